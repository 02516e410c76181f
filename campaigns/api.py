"""The campaigns API (DRF): the same services and selectors as the pages."""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import is_manager
from campaigns import attribution, permissions, selectors, services
from campaigns.models import ABTest, Campaign, UtmLink
from config.api import Conflict
from config.csv_import import ImportRejected, RowError


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
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    channels = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)
    audience = AudienceSerializer(required=False)
    team = serializers.IntegerField(required=False, help_text="Team id (support staff only).")

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


class SummarySerializer(FiguresSerializer):
    by_channel = ChannelFiguresSerializer(many=True)
    by_day = DayFiguresSerializer(many=True)
    funnel = FunnelStepSerializer(many=True)


class ImportResultSerializer(serializers.Serializer):
    imported = serializers.IntegerField()


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class VariantInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    exposures = serializers.IntegerField(min_value=0)
    conversions = serializers.IntegerField(min_value=0)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["conversions"] > attrs["exposures"]:
            raise serializers.ValidationError({"conversions": [_("Conversions cannot exceed exposures.")]})
        return attrs


class ABTestCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    min_sample = serializers.IntegerField(min_value=1, required=False)
    variants = VariantInSerializer(many=True)

    def validate_variants(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) < 2:
            raise serializers.ValidationError(_("An A/B test needs at least two variants."))
        names = [v["name"].strip() for v in value]
        if len(set(names)) != len(names):
            raise serializers.ValidationError(_("Variant names must differ."))
        return value


class VariantOutSerializer(serializers.Serializer):
    name = serializers.CharField()
    exposures = serializers.IntegerField()
    conversions = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class ComparisonSerializer(serializers.Serializer):
    variant = serializers.CharField()
    z = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    lift = serializers.FloatField(allow_null=True)
    lift_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    absolute_lift = serializers.FloatField(allow_null=True)
    absolute_lift_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)


class ABTestResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    min_sample = serializers.IntegerField()
    variants = VariantOutSerializer(many=True)
    control = serializers.CharField(allow_null=True)
    challenger = serializers.CharField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    z = serializers.FloatField(allow_null=True)
    lift = serializers.FloatField(
        allow_null=True, help_text="Relative lift of the challenger over the control."
    )
    lift_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    absolute_lift = serializers.FloatField(allow_null=True)
    absolute_lift_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    alpha = serializers.FloatField()
    winner = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="winner, not_significant or insufficient_data")
    more_exposures_needed = serializers.IntegerField(allow_null=True)
    comparisons = ComparisonSerializer(many=True)


def ab_test_payload(test: ABTest) -> dict[str, Any]:
    return {"id": test.pk, "name": test.name, **services.ab_test_result(test)}


class AttributionChannelSerializer(serializers.Serializer):
    channel = serializers.CharField()
    conversions = serializers.FloatField()
    revenue = serializers.FloatField()


class UnattributedSerializer(serializers.Serializer):
    conversions = serializers.IntegerField()
    revenue = serializers.FloatField()


class AttributionSerializer(serializers.Serializer):
    model = serializers.CharField()
    lookback_days = serializers.IntegerField()
    channels = AttributionChannelSerializer(many=True)
    unattributed = UnattributedSerializer()


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
        dates = {}
        for name in ("date_from", "date_to"):
            if params.get(name):
                try:
                    dates[name] = dt.date.fromisoformat(params[name])
                except ValueError as exc:
                    raise serializers.ValidationError({name: [_("Not a date (use YYYY-MM-DD).")]}) from exc
        return selectors.campaign_list(
            user=self.request.user,
            status=params.get("status", ""),
            channel=params.get("channel", "").strip().lower(),
            team_id=int(params["team"]) if params.get("team", "").isdigit() else None,
            q=params.get("q", "").strip(),
            **dates,
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[s for s, _ in Campaign.Status.choices]),
            OpenApiParameter("channel", str),
            OpenApiParameter("team", int),
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

    @extend_schema(request=CampaignWriteSerializer, responses={201: CampaignDetailSerializer})
    def post(self, request: Request) -> Response:
        data = CampaignWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if Campaign.objects.filter(code=data.validated_data["code"].strip().lower()).exists():
            raise serializers.ValidationError({"code": [_("A campaign with this code exists.")]})
        with django_errors():
            campaign = services.campaign_create(
                by=request.user, team_id=data.validated_data.get("team"), **_plan_fields(data.validated_data)
            )
        return Response(CampaignDetailSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(APIView):
    """One campaign; PATCH changes its plan."""

    @extend_schema(responses=CampaignDetailSerializer)
    def get(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        return Response(CampaignDetailSerializer(campaign).data)

    @extend_schema(request=CampaignWriteSerializer, responses=CampaignDetailSerializer)
    def patch(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        data = CampaignWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = _plan_fields({k: v for k, v in data.validated_data.items() if k != "code"})
        with django_errors():
            campaign = services.campaign_update(campaign=campaign, by=request.user, **fields)
        return Response(CampaignDetailSerializer(campaign).data)


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
    """Import daily metrics (CSV: date, channel, spend, impressions, clicks, leads, conversions, revenue)."""

    importer = staticmethod(services.metrics_import)


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
        return Response(selectors.campaign_summary(campaign=campaign, by_day=True))


class ABTestListCreateView(APIView):
    """A campaign's A/B tests; create one with its variants (the first is the control)."""

    @extend_schema(responses=ABTestResultSerializer(many=True))
    def get(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        return Response([ab_test_payload(t) for t in selectors.campaign_ab_tests(campaign=campaign)])

    @extend_schema(request=ABTestCreateSerializer, responses={201: ABTestResultSerializer})
    def post(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        data = ABTestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with django_errors():
            test = services.ab_test_create(campaign=campaign, by=request.user, **data.validated_data)
        test = selectors.ab_test_get(campaign=campaign, test_id=test.pk)
        return Response(ab_test_payload(test), status=status.HTTP_201_CREATED)


class ABTestDetailView(APIView):
    """One A/B test with its result."""

    @extend_schema(responses=ABTestResultSerializer)
    def get(self, request: Request, code: str, test_id: int) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        return Response(ab_test_payload(selectors.ab_test_get(campaign=campaign, test_id=test_id)))


class AttributionView(APIView):
    """Conversions and revenue credited to channels by first touch, last touch or linear."""

    @extend_schema(
        parameters=[
            OpenApiParameter("model", str, enum=list(attribution.MODELS), default="last_touch"),
            OpenApiParameter("lookback_days", int, default=attribution.DEFAULT_LOOKBACK_DAYS),
        ],
        responses=AttributionSerializer,
    )
    def get(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        model = request.query_params.get("model", "last_touch")
        if model not in attribution.MODELS:
            raise serializers.ValidationError(
                {"model": [_("Choose one of: %(models)s.") % {"models": ", ".join(attribution.MODELS)}]}
            )
        lookback = request.query_params.get("lookback_days", str(attribution.DEFAULT_LOOKBACK_DAYS))
        if not lookback.isdigit() or not 1 <= int(lookback) <= 365:
            raise serializers.ValidationError({"lookback_days": [_("A whole number of days from 1 to 365.")]})
        return Response(attribution.attribute(campaign=campaign, model=model, lookback_days=int(lookback)))


class UtmBuildView(APIView):
    """Build a UTM-tagged link for a campaign and keep it (values trimmed and lower-cased)."""

    @extend_schema(request=UtmRequestSerializer, responses={201: UtmLinkSerializer})
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
