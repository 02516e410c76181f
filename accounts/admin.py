from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditEntry, Notification, Team, User


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


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    list_select_related = ["actor"]
    readonly_fields = ["created_at", "actor", "action", "object_type", "object_id", "changes"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient", "verb", "title", "read_at"]
    list_select_related = ["recipient"]
