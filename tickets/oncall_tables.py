"""On-call rotas, escalation rules, team chat robots and big-sale windows (registered from tickets.models).

The arithmetic lives in tickets.oncall (who is on call), tickets.escalation (rules firing once) and
tickets.chat_robots (the robots' formats, signatures and deliveries).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tickets.models import BusinessCalendar, SlaPolicy, Ticket

WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


class OnCallRota(models.Model):
    """A team's weekly rotation: the members take turns in their order, one week each, handing over on a
    weekday at a time of day in the company time zone (settings.TIME_ZONE)."""

    team = models.OneToOneField(
        "accounts.Team", verbose_name=_("team"), on_delete=models.CASCADE, related_name="oncall_rota"
    )
    starts_on = models.DateField(
        _("rotation start"),
        help_text=_("The first shift begins at the first handover on or after this date."),
    )
    handover_weekday = models.PositiveSmallIntegerField(_("handover weekday"), choices=WEEKDAYS, default=0)
    handover_time = models.TimeField(_("handover time"))
    calendar = models.ForeignKey(
        BusinessCalendar,
        verbose_name=_("business hours"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Urgent and incident requests outside these hours go to the person on call."),
    )
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("team lead"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Escalation rules may hand a request to this person."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("on-call rota")
        verbose_name_plural = _("on-call rotas")

    def __str__(self) -> str:
        return f"rota {self.team_id}"


class OnCallMember(models.Model):
    """One place in a rota's order (0 first)."""

    rota = models.ForeignKey(OnCallRota, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("person"), on_delete=models.CASCADE, related_name="+"
    )
    position = models.PositiveSmallIntegerField(_("position"))

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["rota", "position"], name="oncall_member_position"),
            models.UniqueConstraint(fields=["rota", "user"], name="oncall_member_user"),
        ]

    def __str__(self) -> str:
        return f"{self.rota_id}#{self.position} {self.user_id}"


class OnCallOverride(models.Model):
    """A person covers the rota from one instant to another (the latest override wins where two overlap)."""

    rota = models.ForeignKey(OnCallRota, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("person"), on_delete=models.CASCADE, related_name="+"
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["rota", "ends_at"], name="oncall_override_rota_end")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="oncall_override_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.starts_at}–{self.ends_at}"


class EscalationRule(models.Model):
    """At `percent` % of a target of an SLA policy, do something: reassign, raise urgency, tell, post."""

    class Target(models.TextChoices):
        FIRST_RESPONSE = "first_response", _("First response")
        RESOLUTION = "resolution", _("Resolution")

    class Action(models.TextChoices):
        ASSIGN_ONCALL = "assign_oncall", _("Reassign to the person on call")
        ASSIGN_LEAD = "assign_lead", _("Reassign to the team lead")
        RAISE_URGENCY = "raise_urgency", _("Raise the urgency")
        NOTIFY_MANAGERS = "notify_managers", _("Notify the managers")
        POST_CHAT = "post_chat", _("Post to the team chat")

    policy = models.ForeignKey(
        SlaPolicy, verbose_name=_("SLA policy"), on_delete=models.CASCADE, related_name="escalation_rules"
    )
    target = models.CharField(_("target"), max_length=20, choices=Target.choices)
    percent = models.PositiveSmallIntegerField(
        _("percent of the target"), validators=[MinValueValidator(1), MaxValueValidator(500)]
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy", "target", "percent", "id"]
        verbose_name = _("escalation rule")
        verbose_name_plural = _("escalation rules")
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "target", "percent", "action"], name="escalation_rule_unique"
            ),
            models.CheckConstraint(
                condition=Q(percent__gte=1, percent__lte=500), name="escalation_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy_id} {self.target} {self.percent}% {self.action}"


class EscalationFiring(models.Model):
    """A rule fired on a ticket: written before the action, unique, so each rule acts once per ticket."""

    rule = models.ForeignKey(EscalationRule, on_delete=models.CASCADE, related_name="firings")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations")
    fired_at = models.DateTimeField()
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "ticket"], name="escalation_firing_once")]

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.ticket_id}"


class ChatRobot(models.Model):
    """A team chat's incoming-webhook robot (DingTalk, WeCom or Feishu)."""

    class Kind(models.TextChoices):
        DINGTALK = "dingtalk", _("DingTalk")
        WECOM = "wecom", _("WeCom")
        FEISHU = "feishu", _("Feishu")

    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), on_delete=models.CASCADE, related_name="chat_robots"
    )
    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("service"), max_length=10, choices=Kind.choices)
    webhook_url = models.URLField(_("webhook URL"), max_length=500)
    secret = models.CharField(
        _("signing secret"),
        max_length=200,
        blank=True,
        help_text=_("DingTalk and Feishu: the robot's signing secret, if signing is on."),
    )
    keyword = models.CharField(
        _("keyword"), max_length=60, blank=True, help_text=_("A keyword the robot requires in every message.")
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "name"]
        verbose_name = _("chat robot")
        verbose_name_plural = _("chat robots")

    def __str__(self) -> str:
        return self.name


class ChatDelivery(models.Model):
    """One message for one robot, tried until the robot accepts it or the attempts run out."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    robot = models.ForeignKey(ChatRobot, on_delete=models.CASCADE, related_name="deliveries")
    title = models.CharField(max_length=200)
    text = models.TextField()
    url = models.CharField(max_length=500, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["robot", "-created_at"], name="chat_delivery_robot")]

    def __str__(self) -> str:
        return f"{self.robot_id} {self.status}"


class ChatAttempt(models.Model):
    """One POST to a robot and what it answered."""

    delivery = models.ForeignKey(ChatDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    code = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True)
    ok = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="chat_attempt_number")]

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.number}"


class BigSaleWindow(models.Model):
    """An event window (618, 双11): urgent and incident requests run round the clock on its targets and the
    on-call rota applies at all hours."""

    name = models.CharField(_("name"), max_length=60)
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    urgent_first_response_minutes = models.PositiveIntegerField(_("urgent: first response (minutes)"))
    urgent_resolution_minutes = models.PositiveIntegerField(_("urgent: resolution (minutes)"))
    incident_first_response_minutes = models.PositiveIntegerField(_("incident: first response (minutes)"))
    incident_resolution_minutes = models.PositiveIntegerField(_("incident: resolution (minutes)"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = _("big-sale window")
        verbose_name_plural = _("big-sale windows")
        indexes = [models.Index(fields=["starts_at", "ends_at"], name="big_sale_window_span")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="big_sale_window_order"
            )
        ]

    def __str__(self) -> str:
        return self.name
