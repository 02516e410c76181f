"""The log of unmasked reads of personal data: its selector, API endpoint and page (managers)."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import User
from privacy import permissions
from privacy.models import UnmaskedAccess


def access_log_for(*, user: User, customer: str = "", username: str = "", kind: str = "") -> QuerySet:
    """Unmasked reads, newest first, optionally of one customer (external id), by one person or of one
    kind; empty for people who may not read the log."""
    if not permissions.can_view_access_log(user):
        return UnmaskedAccess.objects.none()
    qs = UnmaskedAccess.objects.select_related("user", "customer").order_by("-at", "-id")
    if customer:
        qs = qs.filter(customer__external_id=customer)
    if username:
        qs = qs.filter(user__username=username)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


class CanViewAccessLog(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return permissions.can_view_access_log(request.user)


class UnmaskedAccessSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", default=None, allow_null=True)
    customer = serializers.CharField(source="customer.external_id", default=None, allow_null=True)

    class Meta:
        model = UnmaskedAccess
        fields = ["id", "at", "user", "kind", "customer", "rows", "what"]


class AccessLogAPI(generics.ListAPIView):
    """`GET /api/v1/privacy/access-log/?customer=…`: who saw personal values unmasked (managers)."""

    serializer_class = UnmaskedAccessSerializer
    permission_classes = [IsAuthenticated, CanViewAccessLog]

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", str, description="a customer's external id"),
            OpenApiParameter("user", str, description="a username"),
            OpenApiParameter("kind", str, enum=list(UnmaskedAccess.Kind.values)),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        kind = request.query_params.get("kind", "")
        if kind and kind not in UnmaskedAccess.Kind.values:
            raise exceptions.ValidationError({"kind": [_("Not a kind of access.")]})
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet:
        params = self.request.query_params
        return access_log_for(
            user=self.request.user,
            customer=params.get("customer", ""),
            username=params.get("user", ""),
            kind=params.get("kind", ""),
        )


@login_required
@require_GET
def access_log_page(request: HttpRequest) -> HttpResponse:
    """The access log page with filters (customer, person, kind)."""
    if not permissions.can_view_access_log(request.user):
        raise PermissionDenied
    customer = request.GET.get("customer", "").strip()[:64]
    username = request.GET.get("user", "").strip()[:150]
    kind = request.GET.get("kind", "")
    if kind not in UnmaskedAccess.Kind.values:
        kind = ""
    entries = access_log_for(user=request.user, customer=customer, username=username, kind=kind)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    context = {
        "nav_active": "privacy",
        "page": page,
        "customer": customer,
        "username": username,
        "kind": kind,
        "kinds": UnmaskedAccess.Kind.choices,
    }
    return render(request, "privacy/access_log.html", context)
