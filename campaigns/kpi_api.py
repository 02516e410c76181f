"""KPI targets over the API (issue 21): read them, and replace them as the campaign's owner or a manager."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import kpi, selectors
from campaigns.api import django_errors
from campaigns.kpi_targets import MAX_TARGET


class KpiTargetsSerializer(serializers.Serializer):
    targets = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=MAX_TARGET),
        help_text="{metric: target}; rates (roi, ctr, cvr) as fractions, roas as a multiple. Replaces all.",
    )

    def validate_targets(self, value: dict) -> dict:
        unknown = sorted(set(value) - set(kpi.METRICS))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown metric: {', '.join(unknown)}. Known: {', '.join(kpi.METRICS)}."
            )
        return value


class KpiTargetsView(APIView):
    """A campaign's KPI targets; PUT replaces them (the campaign's owner or a manager)."""

    @extend_schema(responses=KpiTargetsSerializer)
    def get(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        return Response({"targets": campaign.kpi_targets or {}})

    @extend_schema(request=KpiTargetsSerializer, responses=KpiTargetsSerializer)
    def put(self, request: Request, code: str) -> Response:
        campaign = selectors.campaign_get_for_user(user=request.user, code=code)
        body = KpiTargetsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            with django_errors():
                campaign = kpi.kpi_targets_set(
                    campaign=campaign, by=request.user, targets=body.validated_data["targets"]
                )
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from exc
        return Response({"targets": campaign.kpi_targets})
