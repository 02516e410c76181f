"""The campaigns API (DRF): the same services and selectors as the pages."""

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
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
from campaigns import attribution, permissions, selectors, services
from campaigns.abtest import SEQUENTIAL_METHODS, TESTS
from campaigns.models import ABTest, Campaign, UtmLink
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
    INT32_MAX,
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


class SummarySerializer(FiguresSerializer):
    by_channel = ChannelFiguresSerializer(many=True)
    by_day = DayFiguresSerializer(many=True)
    funnel = FunnelStepSerializer(many=True)


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


class VariantInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    exposures = serializers.IntegerField(min_value=0, max_value=INT32_MAX)
    conversions = serializers.IntegerField(min_value=0, max_value=INT32_MAX)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["conversions"] > attrs["exposures"]:
            raise serializers.ValidationError({"conversions": [_("Conversions cannot exceed exposures.")]})
        return attrs


class ABTestCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    min_sample = serializers.IntegerField(min_value=1, max_value=INT32_MAX, required=False)
    planned_sample = serializers.IntegerField(
        min_value=1,
        max_value=INT32_MAX,
        required=False,
        allow_null=True,
        help_text="Planned exposures per variant, fixed at the start (the MDE is for this sample); "
        "default: min_sample.",
    )
    baseline_rate = serializers.DecimalField(
        max_digits=7,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        max_value=Decimal("0.999999"),
        required=False,
        allow_null=True,
        help_text="Expected conversion rate of the control (a fraction), for the MDE before the test runs; "
        "required for a sequential test.",
    )
    sequential = serializers.ChoiceField(
        choices=list(SEQUENTIAL_METHODS),
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="msprt: an always-valid p-value that may be checked at any time; null or empty: a "
        "fixed-sample test. Fixed when the test is created.",
    )
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


def _interval(help_text: str, *, open_ended: bool = False) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FloatField(allow_null=open_ended),
        min_length=2,
        max_length=2,
        allow_null=True,
        help_text=help_text,
    )


class ComparisonSerializer(serializers.Serializer):
    variant = serializers.CharField(help_text="The challenger compared with the control.")
    test = serializers.ChoiceField(
        choices=list(TESTS), allow_null=True, help_text="The test behind p_value; null when nothing to test."
    )
    z = serializers.FloatField(allow_null=True, help_text="Pooled two-proportion z statistic.")
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided p-value of `test`, unadjusted.")
    p_adjusted = serializers.FloatField(
        allow_null=True, help_text="Bonferroni-adjusted p-value: min(1, p_value × number of challengers)."
    )
    lift = serializers.FloatField(
        allow_null=True, help_text="Absolute lift: challenger rate − control rate (a fraction)."
    )
    lift_ci = _interval(
        "Score interval of the absolute lift at 1 − alpha; excludes 0 exactly when `significant`."
    )
    relative_lift = serializers.FloatField(
        allow_null=True,
        help_text="Relative lift: challenger rate / control rate − 1; null when the control rate is 0.",
    )
    relative_lift_ci = _interval(
        "Score interval of the rate ratio minus 1 at 1 − alpha (never below −1; an upper bound of null is "
        "unbounded); excludes 0 exactly when `significant`.",
        open_ended=True,
    )
    significant = serializers.BooleanField(help_text="p_adjusted < family_alpha (0.05).")
    absolute_lift = serializers.FloatField(
        allow_null=True, help_text="Same as `lift` (kept for older clients)."
    )
    absolute_lift_ci = _interval("Same as `lift_ci` (kept for older clients).")
    power = serializers.FloatField(
        allow_null=True,
        help_text="Power reached: the chance, at the current exposures, to detect the planned MDE at alpha.",
    )


class ABTestResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    min_sample = serializers.IntegerField(help_text="No winner before every variant has this many exposures.")
    planned_sample = serializers.IntegerField(help_text="Planned exposures per variant (the MDE's sample).")
    baseline_rate = serializers.FloatField(
        allow_null=True, help_text="Expected control rate entered at the start (null: not entered)."
    )
    variants = VariantOutSerializer(many=True)
    control = serializers.CharField(allow_null=True)
    challenger = serializers.CharField(
        allow_null=True,
        help_text="The challenger of the top-level figures: the winner, else the challenger with the best rate.",
    )
    test = serializers.ChoiceField(
        choices=list(TESTS),
        allow_null=True,
        help_text="z: pooled two-proportion z-test; fisher: Fisher's exact test (some expected cell count "
        "below 5); msprt: always-valid p-value of the mixture sequential probability ratio test.",
    )
    sequential = serializers.ChoiceField(
        choices=list(SEQUENTIAL_METHODS),
        allow_null=True,
        help_text="The sequential method, null for fixed sample.",
    )
    p_value = serializers.FloatField(allow_null=True)
    z = serializers.FloatField(allow_null=True)
    lift = serializers.FloatField(
        allow_null=True, help_text="Relative lift of the challenger over the control."
    )
    lift_ci = _interval("Interval of the relative lift at 1 − alpha (see comparisons).", open_ended=True)
    absolute_lift = serializers.FloatField(allow_null=True)
    absolute_lift_ci = _interval("Interval of the absolute lift at 1 − alpha.")
    alpha = serializers.FloatField(
        help_text="Level of each comparison: family_alpha / number of challengers."
    )
    family_alpha = serializers.FloatField(help_text="Chance of any false winner over all comparisons (0.05).")
    omnibus_p_value = serializers.FloatField(
        allow_null=True,
        help_text="Chi-square test that all variants share one rate (3 or more variants; else null).",
    )
    mde = serializers.FloatField(
        allow_null=True,
        help_text="Minimum detectable effect, relative to the baseline rate, for the planned sample "
        "(80 % power at alpha); null without a baseline rate or when nothing is detectable.",
    )
    mde_absolute = serializers.FloatField(allow_null=True, help_text="The MDE as a difference of rates.")
    power = serializers.FloatField(
        allow_null=True, help_text="Power reached: the lowest of the comparisons' power for the MDE."
    )
    winner = serializers.CharField(
        allow_null=True,
        help_text="The best challenger significantly better than the control (or the control when it is "
        "significantly better than every challenger), once every variant has min_sample exposures.",
    )
    status = serializers.CharField(help_text="winner, not_significant or insufficient_data")
    more_exposures_needed = serializers.IntegerField(allow_null=True)
    comparisons = ComparisonSerializer(many=True)


def ab_test_payload(test: ABTest) -> dict[str, Any]:
    return {"id": test.pk, "name": test.name, **services.ab_test_result(test)}


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
