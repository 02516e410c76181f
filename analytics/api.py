"""The analytics API: dashboard figures with filters, and report jobs. Same selectors and services as the pages."""

from typing import Any

from django.http import FileResponse, Http404
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors, services
from analytics.charts import dashboard_payload
from analytics.filters import DashboardFilterForm, viewer_time_zone
from analytics.models import ReportJob
from analytics.permissions import CUSTOMERS, MARKETING, SUPPORT, can_run_reports
from analytics.reports import ReportParamsForm
from config.inputs import query_boolean

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

FILTER_PARAMETERS = [
    OpenApiParameter(
        "from", OpenApiTypes.DATE, description="First day (viewer's time zone); default 30 days ago."
    ),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (inclusive); default today."),
    OpenApiParameter("team", OpenApiTypes.INT, description="Team id (requesters always get their own team)."),
    OpenApiParameter("channel", OpenApiTypes.STR),
    OpenApiParameter("campaign", OpenApiTypes.STR, description="Campaign code."),
    OpenApiParameter("urgency", OpenApiTypes.STR, enum=["urgent", "routine", "planned"]),
    OpenApiParameter(
        "refresh", OpenApiTypes.BOOL, description="Recompute instead of answering from the cache."
    ),
]


class ReadSourceFields(serializers.Serializer):
    """Where the figures were read (config/db_router.py): the primary, or a replica with its lag."""

    data_source = serializers.ChoiceField(choices=["primary", "replica"])
    replica_lag_seconds = serializers.FloatField(
        allow_null=True, help_text="How far behind the replica was (null: read live from the primary)."
    )
    data_note = serializers.CharField(
        help_text='"live data from the primary", or "as of HH:MM:SS, N s behind" for a replica.'
    )


class ChartSerializer(ReadSourceFields):
    key = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField()
    as_of = serializers.DateTimeField()
    cached = serializers.BooleanField()
    warnings = serializers.ListField(child=serializers.CharField())
    data = serializers.DictField(help_text="The chart's series: x, series[{key, name, values, links}], ...")


class DashboardSerializer(ReadSourceFields):
    dashboard = serializers.CharField()
    as_of = serializers.DateTimeField(help_text="When the oldest of the charts was computed.")
    filters = serializers.DictField()
    warnings = serializers.ListField(child=serializers.CharField(), help_text="Stale data sources.")
    charts = serializers.DictField(child=ChartSerializer())


class _DashboardView(APIView):
    dashboard = ""

    def get(self, request: Request) -> Response:
        scope = selectors.dashboard_scope_for_user(user=request.user, dashboard=self.dashboard)
        form = DashboardFilterForm(request.query_params, tz=viewer_time_zone(request.user))
        if not form.is_valid():
            raise ValidationError(
                {k: [e["message"] for e in v] for k, v in form.errors.get_json_data().items()}
            )
        filters = form.filters().scoped(scope)
        refresh = query_boolean(request.query_params, "refresh")
        staff = selectors.links_to_queue(user=request.user)
        return Response(dashboard_payload(self.dashboard, filters, staff=staff, refresh=refresh))


@extend_schema(
    tags=["analytics"],
    parameters=FILTER_PARAMETERS,
    responses=DashboardSerializer,
    summary="Support operations figures",
)
class SupportDashboardApi(_DashboardView):
    dashboard = SUPPORT


@extend_schema(
    tags=["analytics"],
    parameters=FILTER_PARAMETERS,
    responses=DashboardSerializer,
    summary="Marketing figures",
)
class MarketingDashboardApi(_DashboardView):
    dashboard = MARKETING


@extend_schema(
    tags=["analytics"],
    parameters=FILTER_PARAMETERS,
    responses=DashboardSerializer,
    summary="Customer figures",
)
class CustomersDashboardApi(_DashboardView):
    dashboard = CUSTOMERS


class ReportJobSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    cancel_url = serializers.SerializerMethodField(
        help_text="POST here to cancel; null once the job has ended."
    )
    data_as_of = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the file's rows are current as of: the replica's replay point, or when the primary "
        "was read. Null until the job is done.",
    )
    data_source = serializers.SerializerMethodField(
        help_text='Where the rows were read: "primary" or "replica"; null until the job is done.'
    )
    replica_lag_seconds = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="How far behind the replica was (null: read live from the primary, or not done yet).",
    )
    data_note = serializers.SerializerMethodField(
        help_text='"live data from the primary", or "as of HH:MM:SS, N s behind" for a replica; null until '
        "the job is done."
    )

    class Meta:
        model = ReportJob
        fields = [
            "id",
            "kind",
            "params",
            "format",
            "status",
            "progress",
            "rows",
            "total_rows",
            "truncated",
            "download_url",
            "cancel_url",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "data_as_of",
            "data_source",
            "replica_lag_seconds",
            "data_note",
        ]
        read_only_fields = fields

    def get_download_url(self, job: ReportJob) -> str | None:
        if job.status != ReportJob.Status.DONE or not job.file:
            return None
        return reverse("api-report-download", args=[job.pk])

    def get_cancel_url(self, job: ReportJob) -> str | None:
        return reverse("api-report-cancel", args=[job.pk]) if job.is_active else None

    # the same enum as the dashboards' `data_source` (ReadSourceFields), and null rather than ""
    @extend_schema_field(serializers.ChoiceField(choices=["primary", "replica"], allow_null=True))
    def get_data_source(self, job: ReportJob) -> str | None:
        return job.data_source or None

    def get_data_note(self, job: ReportJob) -> str | None:
        read = job.data_read
        return None if read is None else read.note()


class _ErrorItemSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField()


class ReportQuotaSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Names the reports in progress.")
    errors = _ErrorItemSerializer(many=True)
    limit = serializers.IntegerField(help_text="Reports one person may have queued or running at once.")
    active = ReportJobSerializer(many=True, help_text="Your reports in progress, oldest first.")


class ReportJobEndedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = _ErrorItemSerializer(many=True)
    job = ReportJobSerializer(help_text="The job as it ended.")


# A hint only: reports take seconds to minutes, and one of yours may be cancelled at any time.
QUOTA_RETRY_AFTER_SECONDS = 30


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReportJob.Kind.choices)
    params = serializers.DictField(
        required=False, default=dict, help_text="from, to, team, channel, campaign, urgency, status, tag"
    )
    format = serializers.ChoiceField(choices=ReportJob.Format.choices, default=ReportJob.Format.CSV)

    def validate_params(self, value: dict[str, Any]) -> dict[str, Any]:
        form = ReportParamsForm(value)
        if not form.is_valid():
            raise ValidationError(
                {k: [e["message"] for e in v] for k, v in form.errors.get_json_data().items()}
            )
        return form.normalised()


def _require_reports(request: Request) -> None:
    if not can_run_reports(request.user):
        raise PermissionDenied


class ReportJobListCreateApi(ListAPIView):
    serializer_class = ReportJobSerializer

    def get_queryset(self):  # noqa: ANN201 - DRF signature
        _require_reports(self.request)
        return selectors.report_jobs_for_user(user=self.request.user)

    @extend_schema(tags=["reports"], summary="My report jobs")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["reports"],
        summary="Start a report (or join the same one still running)",
        description=(
            "Queues a report and answers 202 with its id; the same report (same kind, parameters and "
            "format) still queued or running is joined instead (`joined: true`), unless its worker has "
            "stopped sending heartbeats: that one is marked failed and a new job starts. A person may "
            "have at most `REPORT_JOBS_PER_USER` (default 3) reports queued or running; beyond that the "
            "answer is 429 naming them, each with its `cancel_url`."
        ),
        request=ReportRequestSerializer,
        responses={
            202: inline_serializer(
                "ReportAccepted",
                {
                    "id": serializers.IntegerField(),
                    "status": serializers.CharField(),
                    "joined": serializers.BooleanField(),
                },
            ),
            429: OpenApiResponse(
                ReportQuotaSerializer,
                description="You already have the most reports in progress one person may have; "
                "`active` lists them. Wait for one to end or cancel one (`Retry-After` is a hint).",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        _require_reports(request)
        serializer = ReportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            job, created = services.report_job_request(
                owner=request.user, kind=data["kind"], params=data["params"], file_format=data["format"]
            )
        except services.ReportQuotaExceeded as exc:
            message = exc.message()
            return Response(
                {
                    "detail": message,
                    "errors": [{"message": message, "code": "report_quota"}],
                    "limit": exc.limit,
                    "active": ReportJobSerializer(exc.active, many=True).data,
                },
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(QUOTA_RETRY_AFTER_SECONDS)},
            )
        return Response(
            {"id": job.pk, "status": job.status, "joined": not created}, status=status.HTTP_202_ACCEPTED
        )


@extend_schema(tags=["reports"], summary="A report job's state", responses=ReportJobSerializer)
class ReportJobDetailApi(APIView):
    def get(self, request: Request, pk: int) -> Response:
        job = selectors.report_job_get_for_user(user=request.user, job_id=pk)
        return Response(ReportJobSerializer(job).data)


@extend_schema(
    tags=["reports"],
    summary="Cancel a queued or running report (its owner only)",
    description=(
        "The job ends at once as `cancelled` and no longer counts against your limit of reports in "
        "progress. A running job's worker stops at its next progress beat (about a second) and removes "
        "its temporary files; no file is kept."
    ),
    request=None,
    responses={
        200: ReportJobSerializer,
        409: OpenApiResponse(
            ReportJobEndedSerializer, description="The job had already ended (done, failed or cancelled)."
        ),
    },
)
class ReportJobCancelApi(APIView):
    def post(self, request: Request, pk: int) -> Response:
        _require_reports(request)
        job = selectors.report_job_get_for_user(user=request.user, job_id=pk)
        try:
            job = services.report_job_cancel(job=job, by=request.user)
        except services.ReportJobFinished as exc:
            message = _("The report has already ended (%(status)s); there is nothing to cancel.") % {
                "status": exc.job.get_status_display()
            }
            return Response(
                {
                    "detail": message,
                    "errors": [{"message": message, "code": "report_ended"}],
                    "job": ReportJobSerializer(exc.job).data,
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(ReportJobSerializer(job).data)


@extend_schema(
    tags=["reports"],
    summary="Download a finished report (its owner only)",
    responses={
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="A CSV report (UTF-8)."),
        (200, XLSX): OpenApiResponse(OpenApiTypes.BINARY, description="An Excel report."),
        404: OpenApiResponse(description="No such report of yours, or it is not finished."),
    },
)
class ReportJobDownloadApi(APIView):
    def get(self, request: Request, pk: int) -> FileResponse:
        job = selectors.report_job_get_for_user(user=request.user, job_id=pk)
        return report_file_response(job)


def report_file_response(job: ReportJob) -> FileResponse:
    """The job's file as an attachment; 404 until it is done."""
    from analytics.reports import report_filename

    if job.status != ReportJob.Status.DONE or not job.file:
        raise Http404("The report is not ready.")
    content_type = "text/csv; charset=utf-8" if job.format == ReportJob.Format.CSV else XLSX
    return FileResponse(
        job.file.open("rb"), as_attachment=True, filename=report_filename(job), content_type=content_type
    )
