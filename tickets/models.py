"""Requests (tickets), their conversation, audit trail, SLA policies and business calendars."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from accounts.models import TIMEZONE_CHOICES
from config.concurrency import Versioned
from tickets.sla import SLA_FIELDS

# The open statuses as plain values (Meta cannot see Ticket's attributes); sorted like the selectors send them.
OPEN_STATUS_VALUES = sorted(
    ["new", "triaged", "analysis", "in_progress", "waiting_on_requester", "testing", "awaiting_acceptance"]
)


class Ticket(Versioned):
    """A request from marketing to the marketing-tech support team."""

    # The SLA clock's book-keeping and the first reply: no editor holds them.
    unversioned_fields = frozenset({"first_response_at", *SLA_FIELDS})

    class Type(models.TextChoices):
        SYSTEM_CONFIG = "system_config", _("System configuration")
        DATA_SUPPORT = "data_support", _("Data support")
        INCIDENT = "incident", _("Incident")
        FEATURE = "feature", _("Feature")
        CONSULTATION = "consultation", _("Consultation")

    class Urgency(models.TextChoices):
        URGENT = "urgent", _("Urgent")
        ROUTINE = "routine", _("Routine")
        PLANNED = "planned", _("Planned")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        TRIAGED = "triaged", _("Triaged")
        ANALYSIS = "analysis", _("Analysis")
        IN_PROGRESS = "in_progress", _("In progress")
        WAITING_ON_REQUESTER = "waiting_on_requester", _("Waiting on requester")
        TESTING = "testing", _("Testing")
        AWAITING_ACCEPTANCE = "awaiting_acceptance", _("Awaiting acceptance")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")
        REJECTED = "rejected", _("Rejected")
        CANCELLED = "cancelled", _("Cancelled")

    class Channel(models.TextChoices):
        WEB = "web", _("Web")
        API = "api", _("API")
        IM = "im", _("Chat")
        MEETING = "meeting", _("Meeting")
        ALERT = "alert", _("Monitoring alert")
        EMAIL = "email", _("E-mail")

    class SlaState(models.TextChoices):
        ON_TRACK = "on_track", _("On track")
        AT_RISK = "at_risk", _("At risk")
        BREACHED = "breached", _("Breached")
        PAUSED = "paused", _("Paused")
        MET = "met", _("Met")

    class Feasibility(models.TextChoices):
        FEASIBLE = "feasible", _("Feasible")
        NEEDS_EXTERNAL = "needs_external", _("Needs external help")
        NOT_FEASIBLE = "not_feasible", _("Not feasible")

    OPEN_STATUSES = (
        Status.NEW,
        Status.TRIAGED,
        Status.ANALYSIS,
        Status.IN_PROGRESS,
        Status.WAITING_ON_REQUESTER,
        Status.TESTING,
        Status.AWAITING_ACCEPTANCE,
    )
    DONE_STATUSES = (Status.RESOLVED, Status.CLOSED, Status.REJECTED, Status.CANCELLED)

    key = models.CharField(_("key"), max_length=20, unique=True)
    number = models.PositiveIntegerField(_("number"), unique=True)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    type = models.CharField(_("type"), max_length=20, choices=Type.choices)
    urgency = models.CharField(_("urgency"), max_length=10, choices=Urgency.choices)
    status = models.CharField(_("status"), max_length=24, choices=Status.choices, default=Status.NEW)
    previous_status = models.CharField(
        _("status before waiting"), max_length=24, choices=Status.choices, blank=True
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.WEB)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requester"),
        on_delete=models.PROTECT,
        related_name="requested_tickets",
    )
    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), on_delete=models.PROTECT, related_name="tickets"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    watchers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("watchers"), blank=True, related_name="watched_tickets"
    )
    requested_due = models.DateField(_("requested due date"), null=True, blank=True)
    # Triage
    feasibility = models.CharField(_("feasibility"), max_length=20, choices=Feasibility.choices, blank=True)
    feasibility_note = models.TextField(_("feasibility note"), blank=True)
    effort_hours = models.DecimalField(
        _("effort estimate (hours)"), max_digits=7, decimal_places=1, null=True, blank=True
    )
    cost_estimate = models.DecimalField(
        _("cost estimate"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    is_complex = models.BooleanField(_("complex (needs an approved plan)"), default=False)
    # Time line
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    # SLA (see tickets.sla): due times, the 80 % marks, the pause book-keeping and the stored state
    first_response_due = models.DateTimeField(_("first response due"), null=True, blank=True)
    resolution_due = models.DateTimeField(_("resolution due"), null=True, blank=True)
    first_response_risk_at = models.DateTimeField(null=True, blank=True)
    resolution_risk_at = models.DateTimeField(null=True, blank=True)
    sla_due = models.DateTimeField(_("next SLA due"), null=True, blank=True)
    sla_state = models.CharField(
        _("SLA state"), max_length=10, choices=SlaState.choices, default=SlaState.ON_TRACK
    )
    sla_alert_at = models.DateTimeField(null=True, blank=True)  # when the stored state must next change
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_paused_seconds = models.PositiveIntegerField(default=0)
    # Request type and its fields' values {name: value} (tickets.request_types validates them)
    request_type = models.ForeignKey(
        "tickets.RequestType",
        verbose_name=_("request type"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("request")
        verbose_name_plural = _("requests")
        indexes = [
            models.Index(fields=["status", "sla_due"], name="ticket_status_sla_due"),
            models.Index(fields=["sla_due", "id"], name="ticket_sla_due"),
            # the default queue: open tickets by next deadline (kept small: closed ones never enter it)
            models.Index(
                fields=["sla_due", "id"],
                name="ticket_open_sla_due",
                condition=Q(status__in=OPEN_STATUS_VALUES),
            ),
            models.Index(fields=["team", "status", "-updated_at"], name="ticket_team_status"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
            models.Index(fields=["type", "status"], name="ticket_type_status"),
            models.Index(fields=["urgency", "status"], name="ticket_urgency_status"),
            models.Index(fields=["sla_state", "status"], name="ticket_sla_state_status"),
            models.Index(fields=["sla_alert_at"], name="ticket_sla_alert"),
            models.Index(fields=["campaign", "status"], name="ticket_campaign_status"),
            models.Index(fields=["-updated_at", "-id"], name="ticket_updated"),
            models.Index(fields=["created_at"], name="ticket_created"),
            models.Index(fields=["resolved_at"], name="ticket_resolved"),
            GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="ticket_title_trgm"),
            GinIndex(fields=["custom_fields"], opclasses=["jsonb_path_ops"], name="ticket_custom_fields"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("tickets:detail", args=[self.key])

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class AlertLink(models.Model):
    """A monitoring alert's fingerprint and the incident ticket it opened (tickets.services.alerts): while
    that ticket is open, the same fingerprint comments on it instead of opening another."""

    fingerprint = models.CharField(max_length=128)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="alert_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["fingerprint", "-created_at"], name="alert_link_fingerprint")]

    def __str__(self) -> str:
        return f"{self.fingerprint} → {self.ticket_id}"


class TicketCounter(models.Model):
    """One row per key prefix; locked while a ticket is created so keys never skip or repeat."""

    prefix = models.CharField(max_length=10, unique=True)
    last_number = models.PositiveIntegerField(default=1000)

    def __str__(self) -> str:
        return f"{self.prefix}-{self.last_number}"


class Comment(models.Model):
    """A public reply or an internal note (agents only) on a ticket."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(_("reply"))
    internal = models.BooleanField(_("internal note"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="comment_ticket_created")]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.body[:40]}"


class Attachment(models.Model):
    """An uploaded file, stored under a random name and served only to people who may see the ticket."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(max_length=200)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.original_name


class TicketEvent(models.Model):
    """The audit trail of a ticket: who changed which field from what to what, and when."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        STATUS = "status", _("Status")
        FIELD = "field", _("Field")
        ASSIGN = "assign", _("Assignment")
        COMMENT = "comment", _("Reply")
        NOTE = "note", _("Internal note")
        ATTACHMENT = "attachment", _("Attachment")
        PLAN = "plan", _("Plan")
        LINK = "link", _("Link")
        RATING = "rating", _("Rating")
        SLA = "sla", _("SLA")
        RETROSPECTIVE = "retrospective", _("Retrospective")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The person an assignment gave the ticket to: who worked on it stays known (acceptance rule).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    field = models.CharField(max_length=40, blank=True)
    old = models.TextField(blank=True)
    new = models.TextField(blank=True)
    note = models.TextField(blank=True)
    internal = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="event_ticket_created"),
            models.Index(fields=["kind", "created_at"], name="event_kind_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.field} {self.old}→{self.new}"


class SolutionPlan(models.Model):
    """How complex work will be done; a manager approves it or sends it back."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted for approval")
        APPROVED = "approved", _("Approved")
        RETURNED = "returned", _("Sent back")

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="plan")
    implementation_path = models.TextField(_("implementation path"))
    milestones = models.JSONField(_("milestones"), default=list, blank=True)
    resources = models.TextField(_("resources"), blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(_("review note"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"plan {self.ticket_id} ({self.status})"


class TicketLink(models.Model):
    """A relation between two tickets."""

    class Kind(models.TextChoices):
        DUPLICATE_OF = "duplicate_of", _("duplicate of")
        RELATED_TO = "related_to", _("related to")
        BLOCKS = "blocks", _("blocks")

    source = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links_out")
    target = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links_in")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target", "kind"], name="ticket_link_unique"),
            models.CheckConstraint(condition=~Q(source=models.F("target")), name="ticket_link_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} {self.kind} {self.target_id}"


class CannedReply(models.Model):
    """A reusable reply text for agents."""

    title = models.CharField(_("title"), max_length=100, unique=True)
    body = models.TextField(_("text"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["title"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")

    def __str__(self) -> str:
        return self.title


class SatisfactionRating(models.Model):
    """The requester's rating of delivered work."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="rating")
    rated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.PositiveSmallIntegerField(
        _("score"), validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="rating_score_1_5")
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.score}"


class Retrospective(models.Model):
    """What was learned from a ticket; publishes to the knowledge base."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="retrospective")
    background = models.TextField(_("background"))
    solution = models.TextField(_("solution and steps"))
    configuration = models.TextField(_("configuration"), blank=True)
    lessons = models.TextField(_("lessons learned"), blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"retrospective {self.ticket_id}"


class SavedView(Versioned):
    """A named set of queue filters, per person."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(_("name"), max_length=60)
    query = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_view_user_name")]

    def __str__(self) -> str:
        return self.name


class BusinessCalendar(Versioned):
    """Working hours per weekday, a time zone and holidays: the clock SLAs run on."""

    name = models.CharField(_("name"), max_length=60, unique=True)
    timezone = models.CharField(_("time zone"), max_length=64, choices=TIMEZONE_CHOICES)

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")

    def __str__(self) -> str:
        return self.name


class WorkingHours(models.Model):
    """One working period on one weekday (0 = Monday); a day may have several (e.g. around lunch), never
    overlapping. An end of 00:00 is midnight at the end of the day (entered as 24:00)."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(
        _("weekday"), validators=[MaxValueValidator(6)], help_text=_("0 = Monday … 6 = Sunday")
    )
    start = models.TimeField(_("start"))
    end = models.TimeField(_("end"), help_text=_("00:00 means midnight at the end of the day (24:00)."))

    class Meta:
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")) | Q(end=datetime.time(0)), name="hours_end_after"
            )
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.start}-{self.end}"


class Holiday(models.Model):
    """A whole day off in a calendar."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="holiday_calendar_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class WorkingDay(models.Model):
    """A date with working hours of its own, replacing its weekday's: a make-up working day (调休) on a
    weekend, or a half day. A date is never both a holiday and a working day (the services check)."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="working_days")
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=100, blank=True)
    # [["09:00", "12:00"], ["13:00", "18:00"]]: sorted, not overlapping, "24:00" for midnight
    periods = models.JSONField(_("working hours"), default=list)

    class Meta:
        ordering = ["date"]
        verbose_name = _("working day")
        verbose_name_plural = _("working days")
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="working_day_calendar_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SlaPolicy(Versioned):
    """First-response and resolution targets for one urgency, in business minutes of a calendar (the
    policy's own, or the one chosen for the request's type)."""

    urgency = models.CharField(_("urgency"), max_length=10, choices=Ticket.Urgency.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField(_("first response (business minutes)"))
    resolution_minutes = models.PositiveIntegerField(_("resolution (business minutes)"))
    calendar = models.ForeignKey(
        BusinessCalendar, verbose_name=_("calendar"), on_delete=models.PROTECT, related_name="policies"
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self) -> str:
        return self.urgency


class SlaTypeCalendar(models.Model):
    """The calendar an urgency's policy runs on for one request type (e.g. incidents round the clock)."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="type_calendars")
    type = models.CharField(_("type"), max_length=20, choices=Ticket.Type.choices)
    calendar = models.ForeignKey(
        BusinessCalendar, verbose_name=_("calendar"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["type"]
        constraints = [models.UniqueConstraint(fields=["policy", "type"], name="sla_type_calendar_unique")]

    def __str__(self) -> str:
        return f"{self.policy_id} {self.type}"


class AssignmentCursor(models.Model):
    """Round-robin memory: the agent who was assigned last (one row, locked while choosing)."""

    name = models.CharField(max_length=20, unique=True, default="support")
    last_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.name


from tickets.intake_tables import InboundMail  # noqa: E402, F401  (e-mail intake)
from tickets.oncall_tables import (  # noqa: E402, F401
    BigSaleWindow,
    ChatAttempt,
    ChatDelivery,
    ChatRobot,
    EscalationFiring,
    EscalationRule,
    OnCallMember,
    OnCallOverride,
    OnCallRota,
)
from tickets.plan_tables import (  # noqa: E402, F401  (plan sign-offs and milestones)
    MilestoneReminder,
    PlanMilestone,
    PlanSignoff,
    SignoffDefault,
    SignoffRole,
)
from tickets.routing_tables import (  # noqa: E402, F401
    AgentRouting,
    RequestField,
    RequestType,
    RoutingMiss,
    Skill,
    TeamRouting,
    TypeSkill,
)
