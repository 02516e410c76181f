"""REST API for customer value (issue 19): the fitted value model, the customer's `rfm` and `value`
fields, and the lead score rules (read: agents; write: managers)."""

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm_tags import permissions
from crm_tags.models import Customer, CustomerValue, LeadScoreRule
from crm_tags.tasks import recompute_lead_scores
from crm_tags.value.lead_score import LeadScoreRuleInvalid, lead_score_rule_delete, lead_score_rule_save
from crm_tags.value.store import value_model_latest
from privacy import personal_data


class CanViewValueModel(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return permissions.can_view_value_model(request.user)


class CanConfigureLeadScore(BasePermission):
    """Reading the rules is agent work; changing them a manager's."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return permissions.can_view_value_model(request.user)
        return permissions.can_configure_lead_score(request.user)


# --- the model -------------------------------------------------------------------------------------


class BgNbdSerializer(serializers.Serializer):
    r = serializers.FloatField()
    alpha = serializers.FloatField()
    a = serializers.FloatField()
    b = serializers.FloatField()


class GammaGammaSerializer(serializers.Serializer):
    p = serializers.FloatField()
    q = serializers.FloatField()
    gamma = serializers.FloatField()


class ValueModelSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    time_unit = serializers.ChoiceField(choices=["weeks", "days"])
    bg_nbd = BgNbdSerializer(source="params.bg_nbd")
    gamma_gamma = GammaGammaSerializer(source="params.gamma_gamma")
    customers = serializers.IntegerField(help_text="customers with an order by as_of (the fit's sample)")
    fitted_at = serializers.DateTimeField()


class ValueModelAPI(APIView):
    permission_classes = [IsAuthenticated, CanViewValueModel]

    @extend_schema(
        responses={200: ValueModelSerializer, 404: OpenApiResponse(description="no model fitted yet")}
    )
    def get(self, request: Request) -> Response:
        fit = value_model_latest()
        if fit is None:
            raise exceptions.NotFound(_("No value model has been fitted yet (run fit_value_model)."))
        return Response(ValueModelSerializer(fit).data)


# --- the customer's fields -------------------------------------------------------------------------


class RfmSerializer(serializers.Serializer):
    recency_score = serializers.IntegerField(allow_null=True, min_value=1, max_value=5)
    frequency_score = serializers.IntegerField(allow_null=True, min_value=1, max_value=5)
    monetary_score = serializers.IntegerField(allow_null=True, min_value=1, max_value=5)
    segment = serializers.CharField(allow_null=True)


class CustomerValueSerializer(serializers.Serializer):
    expected_purchases_90d = serializers.FloatField(allow_null=True)
    p_alive = serializers.FloatField(allow_null=True)
    expected_spend = serializers.FloatField(allow_null=True)
    clv_12m = serializers.FloatField(allow_null=True)
    lead_score = serializers.FloatField()


def stored_value(customer: Customer) -> CustomerValue | None:
    """The customer's stored value (read once per customer object), or None before the first fit."""
    try:
        return customer.value
    except ObjectDoesNotExist:
        return None


# --- lead score rules ------------------------------------------------------------------------------


class LeadScoreRuleSerializer(serializers.ModelSerializer):
    points = serializers.DecimalField(max_digits=10, decimal_places=2, coerce_to_string=False)

    class Meta:
        model = LeadScoreRule
        fields = ["id", "name", "kind", "event_type", "condition", "points", "half_life_days", "active"]
        read_only_fields = ["id"]
        extra_kwargs = {"kind": {"required": True}}


def _saved(rule: LeadScoreRule | None, data: dict[str, Any], *, by: Any) -> LeadScoreRule:
    try:
        # a condition on a personal field would sort people by a value the manager may not see
        personal_data.check_rule_allowed(data.get("condition"), viewer=by)
        return lead_score_rule_save(rule=rule, **data)
    except LeadScoreRuleInvalid as exc:
        raise exceptions.ValidationError(exc.errors) from exc
    except personal_data.PersonalRuleForbidden as exc:
        raise exceptions.PermissionDenied(str(exc)) from exc


def _recompute_after_commit() -> None:
    transaction.on_commit(recompute_lead_scores.delay)


class LeadScoreRuleListAPI(APIView):
    permission_classes = [IsAuthenticated, CanConfigureLeadScore]

    @extend_schema(responses=LeadScoreRuleSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(LeadScoreRuleSerializer(LeadScoreRule.objects.order_by("id"), many=True).data)

    @extend_schema(request=LeadScoreRuleSerializer, responses={201: LeadScoreRuleSerializer})
    def post(self, request: Request) -> Response:
        given = LeadScoreRuleSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        rule = _saved(None, dict(given.validated_data), by=request.user)
        _recompute_after_commit()
        return Response(LeadScoreRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class LeadScoreRuleDetailAPI(APIView):
    permission_classes = [IsAuthenticated, CanConfigureLeadScore]

    def _rule(self, rule_id: int) -> LeadScoreRule:
        rule = LeadScoreRule.objects.filter(pk=rule_id).first()
        if rule is None:
            raise Http404
        return rule

    @extend_schema(responses=LeadScoreRuleSerializer)
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(LeadScoreRuleSerializer(self._rule(rule_id)).data)

    @extend_schema(request=LeadScoreRuleSerializer, responses=LeadScoreRuleSerializer)
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = self._rule(rule_id)
        given = LeadScoreRuleSerializer(rule, data=request.data, partial=True)
        given.is_valid(raise_exception=True)
        rule = _saved(rule, dict(given.validated_data), by=request.user)
        _recompute_after_commit()
        return Response(LeadScoreRuleSerializer(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, rule_id: int) -> Response:
        lead_score_rule_delete(rule=self._rule(rule_id))
        _recompute_after_commit()
        return Response(status=status.HTTP_204_NO_CONTENT)
