from django.contrib import admin

from journeys.models import Destination, EmailTemplate, Journey, WebhookRequest


@admin.register(Journey)
class JourneyAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "percent", "team", "owner", "activated_at")
    list_filter = ("status",)
    search_fields = ("name",)
    readonly_fields = ("active_version", "trigger_cursor", "approved_by", "approved_at", "activated_at")


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "url", "batch_size", "purpose", "customer_facing")
    # the secret is set through the API and never shown back
    exclude = ("secret",)


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "purpose", "created_at")


@admin.register(WebhookRequest)
class WebhookRequestAdmin(admin.ModelAdmin):
    """The dead-letter list: requests that failed every attempt (filter by status)."""

    list_display = ("id", "destination", "status", "attempts", "last_status", "last_error", "created_at")
    list_filter = ("status", "destination")
    readonly_fields = ("destination", "idempotency_key", "body", "attempts", "last_status", "last_error")
