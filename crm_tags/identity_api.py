"""The identity API: resolve identifiers to a profile, merge two profiles by hand, undo a merge.

POST /api/v1/customers/resolve/                 {identifiers: [{kind, value}]} -> {external_id} | 404
POST /api/v1/customers/merge/                   {into, from} (manager) -> {into, merge_id}
POST /api/v1/customers/{external_id}/unmerge/   {merge_id} (manager, on the survivor)
"""

from typing import Any

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.inputs import INT32_MAX, InvalidInput
from crm_tags import permissions
from crm_tags.identity import (
    IdentifierInvalid,
    MergeRefused,
    UnmergeRefused,
    customers_merge,
    customers_unmerge,
    identifiers_parse,
    identifiers_resolve,
    identity_rules,
)
from crm_tags.identity.selectors import identifier_value_for
from crm_tags.models import Customer


class CanResolve(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return permissions.can_resolve_identifiers(request.user)


class CanMerge(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return permissions.can_merge_customers(request.user)


class IdentifierSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField(help_text="masked without view_pii in responses")
    app_id = serializers.CharField(required=False, help_text="WeChat app id (openid only)")


class RejectedIdentifierSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()
    reason = serializers.CharField(help_text="blocked, limit, or why two profiles did not merge")


class ResolveSerializer(serializers.Serializer):
    identifiers = IdentifierSerializer(many=True)


class ResolveResponseSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    merged_from = serializers.ListField(child=serializers.CharField())
    rejected = RejectedIdentifierSerializer(many=True)


class MergeSerializer(serializers.Serializer):
    into = serializers.CharField(help_text="external id of the profile that stays")
    # `from` is a keyword: set through the class namespace
    vars()["from"] = serializers.CharField(help_text="external id of the profile merged into it")


class MergeResponseSerializer(serializers.Serializer):
    into = serializers.CharField()
    merge_id = serializers.IntegerField()


class UnmergeSerializer(serializers.Serializer):
    merge_id = serializers.IntegerField()


class UnmergeResponseSerializer(serializers.Serializer):
    external_id = serializers.CharField(help_text="the survivor")
    restored = serializers.CharField(help_text="external id of the profile brought back")


def _text(data: Any, field: str) -> str:
    value = data.get(field) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(_("Give the external id as text."), field=field).as_api_error()
    return value.strip()


def _customer(external_id: str, field: str) -> Customer:
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise InvalidInput(
            _("No customer with the external id %(external_id)s.") % {"external_id": external_id},
            code="not_found",
            field=field,
        ).as_api_error()
    return customer


class CustomerResolveAPI(APIView):
    permission_classes = [CanResolve]

    @extend_schema(
        request=ResolveSerializer,
        responses={200: ResolveResponseSerializer, 404: OpenApiResponse(description="nobody holds them")},
    )
    def post(self, request: Request) -> Response:
        rules = identity_rules()
        raw = request.data.get("identifiers") if isinstance(request.data, dict) else None
        try:
            pairs = identifiers_parse(raw, rules)
        except IdentifierInvalid as exc:
            raise InvalidInput(exc.message, field=exc.kind).as_api_error() from exc
        result = identifiers_resolve(identifiers=pairs, by=request.user, source="api", rules=rules)
        if result.customer is None:
            raise Http404(_("No profile holds these identifiers."))
        rejected = [
            {**r, "value": identifier_value_for(r["kind"], r["value"], viewer=request.user)}
            for r in result.rejected
        ]
        return Response(
            {
                "external_id": result.customer.external_id,
                "merged_from": [m.merged_external_id for m in result.merges],
                "rejected": rejected,
            }
        )


class CustomerMergeAPI(APIView):
    permission_classes = [CanMerge]

    @extend_schema(request=MergeSerializer, responses=MergeResponseSerializer)
    def post(self, request: Request) -> Response:
        into = _customer(_text(request.data, "into"), "into")
        loser = _customer(_text(request.data, "from"), "from")
        try:
            merge = customers_merge(survivor=into, loser=loser, by=request.user, source="api")
        except MergeRefused as exc:
            raise InvalidInput(str(exc), code="merge_refused", field="from").as_api_error() from exc
        return Response({"into": into.external_id, "merge_id": merge.pk})


class CustomerUnmergeAPI(APIView):
    permission_classes = [CanMerge]

    @extend_schema(request=UnmergeSerializer, responses=UnmergeResponseSerializer)
    def post(self, request: Request, external_id: str) -> Response:
        survivor = Customer.objects.filter(external_id=external_id).first()
        if survivor is None:
            raise Http404
        merge_id = request.data.get("merge_id") if isinstance(request.data, dict) else None
        if isinstance(merge_id, str) and merge_id.strip().isdigit():
            merge_id = int(merge_id)
        if isinstance(merge_id, bool) or not isinstance(merge_id, int) or not 0 < merge_id <= INT32_MAX:
            raise InvalidInput(_("Give the merge id as a whole number."), field="merge_id").as_api_error()
        try:
            restored = customers_unmerge(survivor=survivor, merge_id=merge_id, by=request.user)
        except UnmergeRefused as exc:
            raise InvalidInput(str(exc), code="unmerge_refused", field="merge_id").as_api_error() from exc
        return Response({"external_id": survivor.external_id, "restored": restored.external_id})
