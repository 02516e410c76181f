"""The A/B tests' API: create a test with its variants and read its verdict (campaigns/abtest.py)."""

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.abtest import SEQUENTIAL_METHODS, TESTS
from campaigns.api import django_errors
from campaigns.models import ABTest
from config.inputs import INT32_MAX


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
