from django.contrib import admin
from django.http import HttpRequest

from knowledge_base.models import Article, Category, Deflection


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "name_zh", "slug", "parent", "position"]
    list_select_related = ["parent"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "name_zh", "slug"]


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    """Read-only: articles change through the knowledge-base pages so that versions and audit are kept."""

    list_display = ["title", "kind", "language", "status", "owner", "updated_at", "view_count"]
    list_filter = ["status", "kind", "language", "category"]
    list_select_related = ["owner"]
    search_fields = ["title"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Article | None = None) -> bool:
        return False


@admin.register(Deflection)
class DeflectionAdmin(admin.ModelAdmin):
    list_display = ["article", "user", "query", "source", "created_at"]
    list_select_related = ["article", "user"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Deflection | None = None) -> bool:
        return False
