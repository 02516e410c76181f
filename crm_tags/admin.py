from django.contrib import admin

from crm_tags.models import BlockedIdentifier, IdentifierKind, MergeRule


class MergeRuleInline(admin.StackedInline):
    model = MergeRule
    can_delete = False


@admin.register(IdentifierKind)
class IdentifierKindAdmin(admin.ModelAdmin):
    """Identifier kinds with their merge rule: admins add kinds (normalised as trimmed text)."""

    list_display = ("slug", "name", "builtin")
    readonly_fields = ("builtin",)
    inlines = [MergeRuleInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.builtin


@admin.register(BlockedIdentifier)
class BlockedIdentifierAdmin(admin.ModelAdmin):
    """Junk values that never link profiles; store them in their normal form (phones in E.164)."""

    list_display = ("kind", "value")
    search_fields = ("value",)
