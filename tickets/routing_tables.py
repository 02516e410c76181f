"""Tables of routing (per-team setting, agents' skills, availability and capacity) and of request types
(per-team forms with their own fields). Imported at the end of tickets.models, so they are tickets' models."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tickets.models import Ticket


class TeamRouting(models.Model):
    """How a team's new requests find an agent (tickets.routing); a team without a row uses round-robin."""

    class Mode(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("Round-robin")
        LOAD = "load", _("Least loaded")
        SKILL = "skill", _("By skill, then least loaded")

    team = models.OneToOneField(
        "accounts.Team", verbose_name=_("team"), on_delete=models.CASCADE, related_name="routing"
    )
    mode = models.CharField(_("routing"), max_length=12, choices=Mode.choices, default=Mode.ROUND_ROBIN)
    assign_on_create = models.BooleanField(
        _("assign when filed"),
        default=False,
        help_text=_("Otherwise the request is assigned when it is triaged."),
    )
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("team lead"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Told when nobody can take a request; empty: the managers."),
    )
    last_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("team routing")
        verbose_name_plural = _("team routing")

    def __str__(self) -> str:
        return f"{self.team_id} {self.mode}"


class Skill(models.Model):
    """Something an agent can do (e.g. "SQL", "mini-program"), required by request types and ticket types."""

    name = models.CharField(_("name"), max_length=60, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("skill")
        verbose_name_plural = _("skills")

    def __str__(self) -> str:
        return self.name


class AgentRouting(models.Model):
    """An agent's routing state: away or not, the most open weighted load they take, their skills.
    The row is locked while a ticket is routed (tickets.routing), so two requests never both fill one slot."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("agent"), on_delete=models.CASCADE, related_name="routing"
    )
    away = models.BooleanField(_("away"), default=False)
    away_since = models.DateTimeField(_("away since"), null=True, blank=True)
    capacity = models.PositiveIntegerField(
        _("capacity"),
        null=True,
        blank=True,
        help_text=_("The most open weighted load (urgent 3, routine 2, planned 1); empty: no limit."),
    )
    skills = models.ManyToManyField(Skill, verbose_name=_("skills"), blank=True, related_name="agents")

    class Meta:
        verbose_name = _("agent routing")
        verbose_name_plural = _("agent routing")

    def __str__(self) -> str:
        return f"{self.user_id} away={self.away} capacity={self.capacity}"


class TypeSkill(models.Model):
    """A ticket type that needs a skill in one team's skill-based routing."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="type_skills")
    type = models.CharField(_("type"), max_length=20, choices=Ticket.Type.choices)
    skill = models.ForeignKey(Skill, verbose_name=_("skill"), on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "type", "skill"], name="type_skill_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.team_id} {self.type} {self.skill_id}"


class RoutingMiss(models.Model):
    """A ticket nobody could take: the team lead was told (once per ticket)."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="routing_miss")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.ticket_id)


class RequestType(models.Model):
    """A kind of request a team files (e.g. "data export"), with its own fields and defaults."""

    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), on_delete=models.CASCADE, related_name="request_types"
    )
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=300, blank=True)
    default_type = models.CharField(_("default type"), max_length=20, choices=Ticket.Type.choices, blank=True)
    default_urgency = models.CharField(
        _("default urgency"), max_length=10, choices=Ticket.Urgency.choices, blank=True
    )
    default_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("default assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    skills = models.ManyToManyField(Skill, verbose_name=_("required skills"), blank=True, related_name="+")
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("request type")
        verbose_name_plural = _("request types")
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="request_type_team_name")]

    def __str__(self) -> str:
        return self.name


class RequestField(models.Model):
    """One field of a request type's form; its value lives in Ticket.custom_fields under `name`."""

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        CHOICE = "choice", _("Choice")
        USER = "user", _("Person")
        CAMPAIGN = "campaign", _("Campaign")

    request_type = models.ForeignKey(RequestType, on_delete=models.CASCADE, related_name="fields")
    name = models.SlugField(
        _("name"),
        max_length=40,
        help_text=_("Lower-case letters, digits and _; used in the API and in queue filters (cf_<name>)."),
    )
    label = models.CharField(_("label"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.TEXT)
    required = models.BooleanField(_("required"), default=False)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("request field")
        verbose_name_plural = _("request fields")
        constraints = [
            models.UniqueConstraint(fields=["request_type", "name"], name="request_field_type_name"),
            models.CheckConstraint(condition=Q(name__regex=r"^[a-z][a-z0-9_]*$"), name="request_field_name"),
        ]

    def __str__(self) -> str:
        return f"{self.request_type_id}.{self.name}"
