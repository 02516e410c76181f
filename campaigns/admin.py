from django.contrib import admin

from campaigns.models import ABTest, ABVariant, Campaign, CampaignReview, CampaignTask, DailyMetric, UtmLink


class CampaignTaskInline(admin.TabularInline):
    model = CampaignTask
    extra = 0
    raw_id_fields = ["owner"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "status", "team", "owner", "start_date", "end_date", "budget"]
    list_filter = ["status", "team"]
    search_fields = ["code", "name"]
    raw_id_fields = ["owner", "approved_by"]
    list_select_related = ["team", "owner"]
    inlines = [CampaignTaskInline]


@admin.register(DailyMetric)
class DailyMetricAdmin(admin.ModelAdmin):
    list_display = ["campaign", "date", "channel", "spend", "revenue", "conversions"]
    list_filter = ["channel"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign"]


class ABVariantInline(admin.TabularInline):
    model = ABVariant
    extra = 0


@admin.register(ABTest)
class ABTestAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "min_sample", "created_at"]
    raw_id_fields = ["campaign", "created_by"]
    inlines = [ABVariantInline]


admin.site.register(
    UtmLink, list_display=["url", "campaign", "created_at"], raw_id_fields=["campaign", "created_by"]
)
admin.site.register(
    CampaignReview, list_display=["campaign", "author", "created_at"], raw_id_fields=["campaign", "author"]
)
