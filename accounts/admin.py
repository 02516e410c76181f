from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import TokenProxy

from accounts.models import ApiToken, AuditEntry, Notification, Team, User
from accounts.tokens import api_token_revoke
from accounts.two_factor import two_factor_disable
from accounts.user_sessions import sessions_end_all

# DRF's plain-text tokens are not used (accounts.ApiToken replaced them); creating one would do nothing.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
# django-otp's device admin shows each secret as a QR code; people reset a lost phone with the action below.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "name_zh", "is_support"]
    search_fields = ["name", "name_zh"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "display_name", "email", "team", "is_active", "is_staff"]
    list_filter = ["team", "groups", "is_active", "is_staff"]
    list_select_related = ["team"]
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("MarTech Hub"), {"fields": ("team", "display_name", "language", "timezone", "is_available")}),
    )
    actions = ["reset_two_factor"]

    @admin.action(description=_("Reset two-factor sign-in (lost phone) and sign them out"))
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for person in queryset.exclude(pk=request.user.pk):
            two_factor_disable(user=person, by=request.user)
            sessions_end_all(user=person)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    list_select_related = ["actor"]
    readonly_fields = [
        "created_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "changes",
        "seq",
        "prev_hash",
        "entry_hash",
        "content_digest",
        "redacted_at",
        "redacted_by",
    ]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the database refuses it too (accounts/audit_chain.py)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient", "verb", "title", "read_at"]
    list_select_related = ["recipient"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "name",
        "scope",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope", "revoke_reason"]
    list_select_related = ["user"]
    search_fields = ["user__username", "name", "prefix"]
    readonly_fields = [f.name for f in ApiToken._meta.fields if f.name != "key_hash"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issued on the API tokens page or by POST /api/v1/auth/token/

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.select_related("user").filter(revoked_at__isnull=True):
            api_token_revoke(token=token, by=request.user)
