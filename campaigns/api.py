"""The campaigns API (DRF): the same services and selectors as the pages."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import is_manager
from campaigns import attribution, kpi, permissions, selectors, services
from campaigns.models import Campaign, UtmLink
from config.api import Conflict
from config.concurrency import (
    IF_MATCH_PARAMETER,
    api_versions,
    etag_header,
    if_match,
    version_error_responses,
    version_token,
    with_etag,
)
from config.csv_import import ImportRejected, RowError
from config.inputs import (
    INT64_MAX,
    MultiPartParser,
    day_validator,
    query_boolean,
    query_choice,
    query_day,
    query_whole_number,
)


@contextmanager
def django_errors() -> Iterator[None]:
    """Model validation errors answer 400 in the API's one error shape."""
    try:
        yield
    except DjangoValidationError as exc:
        raise serializers.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        ) from exc


# Serializers -----------------------------------------------------------------------------------


class AudienceSerializer(serializers.Serializer):
    include = serializers.ListField(child=serializers.SlugField(max_length=100), required=False, default=list)
    include_mode = serializers.ChoiceField(
        choices=Campaign.IncludeMode.choices, required=False, default="any"
    )
    exclude = serializers.ListField(child=serializers.SlugField(max_length=100), required=False, default=list)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        slugs = list(attrs.get("include", [])) + list(attrs.get("exclude", []))
        known = selectors.known_tag_slugs(slugs)
        if known is not None:
            unknown = sorted(set(slugs) - known)
            if unknown:
                raise serializers.ValidationError(
                    {"include": [_("Unknown tag(s): %(tags)s.") % {"tags": ", ".join(unknown)}]}
                )
        return attrs


class CampaignSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    team = serializers.CharField(source="team.name", read_only=True)
    budget = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False)
    approved_by = serializers.CharField(
        source="approved_by.username", read_only=True, default=None, allow_null=True
    )
    audience = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "code",
            "name",
            "objective",
            "kpi_targets",
            "channels",
            "budget",
            "start_date",
            "end_date",
            "status",
            "owner",
            "team",
            "audience",
            "approved_by",
            "approved_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(AudienceSerializer)
    def get_audience(self, campaign: Campaign) -> dict[str, Any]:
        return {
            "include": list(campaign.audience_include),
            "include_mode": campaign.audience_include_mode,
            "exclude": list(campaign.audience_exclude),
        }


class CampaignDetailSerializer(CampaignSerializer):
    audience_size = serializers.SerializerMethodField()

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "audience_size"]

    def get_audience_size(self, campaign: Campaign) -> int | None:
        return selectors.campaign_audience_size(campaign=campaign)


class CampaignWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    code = serializers.CharField(max_length=60)
    objective = serializers.CharField(required=False, allow_blank=True, default="")
    kpi_targets = serializers.DictField(required=False, default=dict)
    budget = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    start_date = serializers.DateField(validators=[day_validator])
    end_date = serializers.DateField(validators=[day_validator])
    channels = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)
    audience = AudienceSerializer(required=False)
    team = serializers.IntegerField(
        required=False, min_value=1, max_value=INT64_MAX, help_text="Team id (support staff only)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": [_("The end date is before the start date.")]})
        return attrs


def _plan_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in data.items() if k not in ("audience", "team")}
    audience = data.get("audience")
    if audience is not None:
        fields["audience_include"] = list(audience.get("include", []))
        fields["audience_include_mode"] = audience.get("include_mode", "any")
        fields["audience_exclude"] = list(audience.get("exclude", []))
    return fields


class FiguresSerializer(serializers.Serializer):
    spend = serializers.FloatField()
    revenue = serializers.FloatField()
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    leads = serializers.IntegerField()
    conversions = serializers.IntegerField()
    roi = serializers.FloatField(allow_null=True)
    roas = serializers.FloatField(allow_null=True)
    cac = serializers.FloatField(allow_null=True)
    ctr = serializers.FloatField(allow_null=True)
    cvr = serializers.FloatField(allow_null=True)
    cost_per_lead = serializers.FloatField(allow_null=True)
    budget_used_pct = serializers.FloatField(allow_null=True)


class ChannelFiguresSerializer(FiguresSerializer):
    channel = serializers.CharField()


class DayFiguresSerializer(FiguresSerializer):
    date = serializers.DateField()


class FunnelStepSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=["impressions", "clicks", "leads", "conversions"])
    value = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="This step over the step before.")


class KpiSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=list(kpi.METRICS))
    target = serializers.FloatField(
        help_text="As the figure is stated: rates as fractions, ROAS as a multiple."
    )
    actual = serializers.FloatField(
        allow_null=True, help_text="The summary's figure; null when it has no value."
    )
    attainment = serializers.FloatField(
        allow_null=True,
        help_text="actual / target; null when the target is 0. For spend, cac and cost_per_lead lower is "
        "better: 1 or less meets the target; for the others 1 or more does.",
    )


class SummarySerializer(FiguresSerializer):
    by_channel = ChannelFiguresSerializer(many=True)
    by_day = DayFiguresSerializer(many=True)
    funnel = FunnelStepSerializer(many=True)
    kpi = KpiSerializer(many=True, help_text="KPI targets compared with the actuals (campaigns.kpi).")


class ImportResultSerializer(serializers.Serializer):
    imported = serializers.IntegerField()


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class MetricsUploadSerializer(UploadSerializer):
    confirm = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Import rows that are valid but look wrong (more clicks than impressions, a day after today). "
            "Without it such a file answers 422 listing them as `errors` (code `warning`) and nothing "
            "is written; send the same file again with `confirm=true` to import it."
        ),
    )


class AttributionChannelSerializer(serializers.Serializer):
    channel = serializers.CharField()
    conversions = serializers.FloatField(
        help_text="Conversions credited, to 6 decimals; the channels add up exactly to `attributed.conversions`."
    )
    revenue = serializers.FloatField(
        help_text="Revenue credited, to the cent; the channels add up exactly to `attributed.revenue`."
    )


class UnattributedSerializer(serializers.Serializer):
    conversions = serializers.IntegerField()
    revenue = serializers.FloatField()


class AttributionSerializer(serializers.Serializer):
    model = serializers.ChoiceField(
        choices=list(attribution.MODELS),
        help_text=(
            "first_touch: all to the earliest touch in the window; last_touch: all to the latest; "
            "linear: evenly across the touches; position_based: 40 % to the first and 40 % to the last "
            "touch, 20 % shared by those between (one touch 100 %, two touches 50 % each); time_decay: a "
            "touch's weight halves every `half_life_days` before the conversion, scaled to sum to 1."
        ),
    )
    lookback_days = serializers.IntegerField()
    half_life_days = serializers.IntegerField(
        allow_null=True, help_text="The half-life used; null unless time_decay."
    )
    channels = AttributionChannelSerializer(many=True)
    attributed = UnattributedSerializer(
        help_text="Conversions with a touch in the window and their revenue: what the channels add up to."
    )
    unattributed = UnattributedSerializer(help_text="Conversions with no touch in the window.")


class UtmRequestSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The campaign's code.")
    url = serializers.URLField(max_length=1000)
    source = serializers.CharField(max_length=100)
    medium = serializers.CharField(max_length=100)
    campaign = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    content = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    term = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class UtmLinkSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="campaign.code", read_only=True)
    campaign = serializers.CharField(source="utm_campaign", read_only=True)

    class Meta:
        model = UtmLink
        fields = [
            "id",
            "code",
            "url",
            "base_url",
            "source",
            "medium",
            "campaign",
            "content",
            "term",
            "created_at",
        ]


# Views -----------------------------------------------------------------------------------------


class CampaignListCreateView(generics.ListAPIView):
    """Campaigns the caller may see; create a draft (status planning)."""

    serializer_class = CampaignSerializer

    def get_queryset(self) -> Any:
        params = self.request.query_params
        return selectors.campaign_list(
            user=self.request.user,
            status=query_choice(params, "status", Campaign.Status.values),
            channel=params.get("channel", "").strip().lower(),
            team_id=query_whole_number(params, "team", minimum=1),
            q=params.get("q", "").strip(),
            date_from=query_day(params, "date_from"),
            date_to=query_day(params, "date_to"),
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[s for s, _ in Campaign.Status.choices]),
            OpenApiParameter("channel", str),
            OpenApiParameter("team", {"type": "integer", "minimum": 1}),
            OpenApiParameter("q", str, description="Part of the name or code."),
            OpenApiParameter(
                "date_from", OpenApiTypes.DATE, description="Campaigns ending on or after this day."
            ),
            OpenApiParameter(
                "date_to", OpenApiTypes.DATE, description="Campaigns starting on or before this day."
            ),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=CampaignWriteSerializer,
        responses={201: CampaignDetailSerializer},
        parameters=[etag_header(201)],
    )
    def post(self, request: Request) -> Response:
        data = CampaignWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if Campaign.objects.filter(code=data.validated_data["code"].strip().lower()).exists():
            raise serializers.ValidationError({"code": [_("A campaign with this code exists.")]})
        with django_errors():
            campaign = services.campaign_create(
                by=request.user, team_id=data.validated_data.get("team"), **_plan_fields(data.validated_data)
            )
        return with_etag(
            Response(CampaignDetailSerializer(campaign).data, status=status.HTTP_201_CREATED),
            version_token(campaign),
        )


class CampaignDetailView(APIView):
    """One campaign (its version in the ETag header); PATCH changes its plan, given that version as If-Match."""

    def _current(self, request: Request, code: str) -> tuple[str, dict]:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        return version_token(campaign), CampaignDetailSerializer(campaign).data

    @extend_schema(responses=CampaignDetailSerializer, parameters=[etag_header(200)])
    def get(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        return with_etag(Response(CampaignDetailSerializer(campaign).data), version_token(campaign))

    @extend_schema(
        request=CampaignWriteSerializer,
        parameters=[IF_MATCH_PARAMETER, etag_header(200, 409, 428)],
        responses={
            200: CampaignDetailSerializer,
            **version_error_responses("Campaign", CampaignDetailSerializer),
        },
    )
    def patch(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        if not permissions.can_edit_campaign(request.user, campaign):
            raise PermissionDenied(_("You cannot change this campaign."))
        with api_versions(lambda: self._current(request, code)):
            expected = if_match(request)
            data = CampaignWriteSerializer(data=request.data, partial=True)
            data.is_valid(raise_exception=True)
            fields = _plan_fields({k: v for k, v in data.validated_data.items() if k != "code"})
            with django_errors():
                campaign = services.campaign_update(
                    campaign=campaign, by=request.user, expected_version=expected, **fields
                )
        return with_etag(Response(CampaignDetailSerializer(campaign).data), version_token(campaign))


class CampaignApproveView(APIView):
    """A manager approves a campaign in planning."""

    @extend_schema(request=None, responses=CampaignDetailSerializer)
    def post(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        if not permissions.can_approve_campaign(request.user, campaign):
            if campaign.status != Campaign.Status.PLANNING and is_manager(request.user):
                raise Conflict(_("Only a campaign in planning can be approved."))
            raise PermissionDenied(_("Only a manager can approve a campaign."))
        campaign = services.campaign_approve(campaign=campaign, by=request.user)
        return Response(CampaignDetailSerializer(campaign).data)


def _upload(request: Request) -> Any:
    upload = request.FILES.get("file")
    if upload is None:
        raise ImportRejected(
            [RowError(row=0, column="", message=_("Send the CSV as the multipart field `file`."))]
        )
    return upload


class _ImportView(APIView):
    parser_classes = [MultiPartParser]
    importer: Any = None

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={200: ImportResultSerializer})
    def post(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        if not permissions.can_edit_campaign(request.user, campaign):
            raise PermissionDenied(_("You cannot change this campaign."))
        count = type(self).importer(campaign=campaign, upload=_upload(request), by=request.user)
        return Response({"imported": count})


class MetricsImportView(_ImportView):
    """Import daily metrics (CSV: date, channel, spend, impressions, clicks, leads, conversions, revenue).
    Rows with more clicks than impressions or a day after today are imported only with `confirm=true`."""

    importer = staticmethod(services.metrics_import)

    @extend_schema(
        request={"multipart/form-data": MetricsUploadSerializer},
        responses={
            200: ImportResultSerializer,
            422: OpenApiResponse(
                description=(
                    "The file is valid but has rows that need confirming; nothing was imported. `errors` "
                    "lists them (`row`, `column`, `message`, code `warning`): send the file again with "
                    "`confirm=true` to import it as it is."
                )
            ),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        if not permissions.can_edit_campaign(request.user, campaign):
            raise PermissionDenied(_("You cannot change this campaign."))
        confirm = query_boolean(request.data, "confirm")
        count = services.metrics_import(
            campaign=campaign, upload=_upload(request), by=request.user, confirm=confirm
        )
        return Response({"imported": count})


class TouchpointsImportView(_ImportView):
    """Import touchpoints (CSV: customer_external_id, occurred_at, channel[, utm_source, utm_medium, utm_campaign])."""

    importer = staticmethod(services.touchpoints_import)


class ConversionsImportView(_ImportView):
    """Import conversions (CSV: customer_external_id, occurred_at, revenue)."""

    importer = staticmethod(services.conversions_import)


class CampaignSummaryView(APIView):
    """Figures overall and per channel; ratios are fractions, null on a zero denominator."""

    @extend_schema(responses=SummarySerializer)
    def get(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        summary = selectors.campaign_summary(campaign=campaign, by_day=True)
        summary["kpi"] = kpi.kpi_rows(campaign.kpi_targets, summary)
        return Response(summary)


class AttributionView(APIView):
    """Conversions and revenue credited to channels by first touch, last touch, linear, position based
    (40/20/40) or time decay; credits are rounded so the channels add up exactly to the attributed totals."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "model",
                str,
                enum=list(attribution.MODELS),
                default="last_touch",
                description="How each conversion is split across its touches (see the response's `model`).",
            ),
            OpenApiParameter(
                "lookback_days",
                {"type": "integer", "minimum": 1, "maximum": attribution.MAX_LOOKBACK_DAYS},
                default=attribution.DEFAULT_LOOKBACK_DAYS,
                description="Touches up to this many days before a conversion count.",
            ),
            OpenApiParameter(
                "half_life_days",
                {"type": "integer", "minimum": 1, "maximum": attribution.MAX_HALF_LIFE_DAYS},
                default=attribution.DEFAULT_HALF_LIFE_DAYS,
                description="time_decay only: a touch this many days older weighs half as much.",
            ),
        ],
        responses=AttributionSerializer,
    )
    def get(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        params = request.query_params
        model = query_choice(params, "model", attribution.MODELS, default="last_touch")
        lookback = query_whole_number(
            params,
            "lookback_days",
            default=attribution.DEFAULT_LOOKBACK_DAYS,
            minimum=1,
            maximum=attribution.MAX_LOOKBACK_DAYS,
        )
        half_life = query_whole_number(
            params,
            "half_life_days",
            default=attribution.DEFAULT_HALF_LIFE_DAYS,
            minimum=1,
            maximum=attribution.MAX_HALF_LIFE_DAYS,
        )
        return Response(
            attribution.attribute(
                campaign=campaign, model=model, lookback_days=lookback, half_life_days=half_life
            )
        )


class UtmBuildView(APIView):
    """Build a UTM-tagged link for a campaign and keep it (values trimmed and lower-cased)."""

    @extend_schema(
        request=UtmRequestSerializer,
        responses={
            201: UtmLinkSerializer,
            404: OpenApiResponse(description="No campaign with this `code` within your reach."),
        },
    )
    def post(self, request: Request) -> Response:
        data = UtmRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        campaign = selectors.campaign_get_for_user(user=request.user, code=values.pop("code"))
        with django_errors():
            link = services.utm_link_create(
                campaign=campaign, by=request.user, utm_campaign=values.pop("campaign"), **values
            )
        return Response(UtmLinkSerializer(link).data, status=status.HTTP_201_CREATED)
