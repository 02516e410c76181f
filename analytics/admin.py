from django.contrib import admin

from analytics.models import ReportDelivery, ReportJob, ReportSubscription


@admin.register(ReportJob)
class ReportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "kind",
        "format",
        "status",
        "progress",
        "rows",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind", "format"]
    list_select_related = ["owner"]
    readonly_fields = ["dedupe_key", "heartbeat_at", "started_at", "finished_at"]


class ReportDeliveryInline(admin.TabularInline):
    model = ReportDelivery
    extra = 0
    readonly_fields = ["status", "period_start", "period_end", "recipient", "error", "created_at"]


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["owner", "kind", "weekday", "hour", "active", "last_sent_at"]
    list_filter = ["kind", "active"]
    list_select_related = ["owner"]
    inlines = [ReportDeliveryInline]
