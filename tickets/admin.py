from django.contrib import admin

from tickets.models import (
    BusinessCalendar,
    CannedReply,
    Holiday,
    SlaPolicy,
    SlaTypeCalendar,
    Ticket,
    TicketEvent,
    WorkingDay,
    WorkingHours,
)


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    extra = 0


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0


class WorkingDayInline(admin.TabularInline):
    model = WorkingDay
    extra = 0


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "timezone"]
    inlines = [WorkingHoursInline, HolidayInline, WorkingDayInline]


class SlaTypeCalendarInline(admin.TabularInline):
    model = SlaTypeCalendar
    extra = 0


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ["urgency", "first_response_minutes", "resolution_minutes", "calendar"]
    inlines = [SlaTypeCalendarInline]


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ["title"]
    search_fields = ["title", "body"]


class TicketEventInline(admin.TabularInline):
    model = TicketEvent
    extra = 0
    can_delete = False
    readonly_fields = ["actor", "kind", "field", "old", "new", "note", "created_at"]


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Read-mostly: changes go through the pages so the workflow and the audit trail hold."""

    list_display = [
        "key",
        "title",
        "status",
        "urgency",
        "type",
        "team",
        "assignee",
        "sla_state",
        "created_at",
    ]
    list_filter = ["status", "urgency", "type", "sla_state"]
    search_fields = ["key", "title"]
    list_select_related = ["team", "assignee"]
    readonly_fields = [f.name for f in Ticket._meta.concrete_fields]
    inlines = [TicketEventInline]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False


# plan sign-offs (issue 21): the default sign-off list per requesting team and type, set by an admin
from tickets.plan_tables import SignoffDefault  # noqa: E402


@admin.register(SignoffDefault)
class SignoffDefaultAdmin(admin.ModelAdmin):
    list_display = ["team", "ticket_type", "position", "role", "signer_team"]
    list_filter = ["ticket_type", "role"]
    list_select_related = ["team", "signer_team"]
