"""Plan sign-offs and milestones (issue 21): tables registered through tickets.models, which re-imports
this module at its end, so `from tickets.models import PlanSignoff` works like any other ticket model."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tickets.models import SolutionPlan, Ticket


class SignoffRole(models.TextChoices):
    """Roles a sign-off can name (accounts.roles); a team names its members instead."""

    MANAGER = "manager", _("Manager")
    AGENT = "agent", _("Support agent")
    ADMIN = "admin", _("Administrator (IT)")


_ONE_SIGNER = (Q(role="") & Q(team__isnull=False)) | (~Q(role="") & Q(team__isnull=True))


class PlanSignoff(models.Model):
    """One approval a submitted plan needs in one revision: from a holder of a role or a member of a team.
    Every submission starts a new revision with fresh rows, so a send-back resets every approval."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("Waiting")
        APPROVED = "approved", _("Approved")
        RETURNED = "returned", _("Sent back")

    plan = models.ForeignKey(SolutionPlan, on_delete=models.CASCADE, related_name="signoffs")
    revision = models.PositiveIntegerField(_("revision"))
    position = models.PositiveSmallIntegerField(default=0)
    role = models.CharField(_("role"), max_length=20, choices=SignoffRole.choices, blank=True)
    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decision = models.CharField(
        _("decision"), max_length=10, choices=Decision.choices, default=Decision.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan", "revision", "position", "id"]
        verbose_name = _("plan sign-off")
        verbose_name_plural = _("plan sign-offs")
        constraints = [
            models.CheckConstraint(condition=_ONE_SIGNER, name="plan_signoff_role_or_team"),
            models.UniqueConstraint(fields=["plan", "revision", "position"], name="plan_signoff_position"),
            # a person approves once per revision, whatever roles and teams they hold
            models.UniqueConstraint(
                fields=["plan", "revision", "decided_by"],
                condition=Q(decided_by__isnull=False),
                name="plan_signoff_once_per_person",
            ),
        ]
        indexes = [models.Index(fields=["decision", "role", "team"], name="plan_signoff_waiting")]

    def __str__(self) -> str:
        return f"{self.plan_id} r{self.revision} {self.role or self.team_id}: {self.decision}"

    @property
    def signer_label(self) -> str:
        return str(SignoffRole(self.role).label) if self.role else str(self.team)


class SignoffDefault(models.Model):
    """A sign-off a plan needs by default, for requests of a team and/or a type (blank means any). The
    most specific match wins: team and type, then team, then type; none at all means one manager."""

    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("requesting team"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    ticket_type = models.CharField(_("type"), max_length=20, choices=Ticket.Type.choices, blank=True)
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    role = models.CharField(_("role"), max_length=20, choices=SignoffRole.choices, blank=True)
    signer_team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("signing team"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )

    class Meta:
        ordering = ["team", "ticket_type", "position", "id"]
        verbose_name = _("default plan sign-off")
        verbose_name_plural = _("default plan sign-offs")
        constraints = [
            models.CheckConstraint(
                condition=(Q(role="") & Q(signer_team__isnull=False))
                | (~Q(role="") & Q(signer_team__isnull=True)),
                name="signoff_default_role_or_team",
            )
        ]

    def __str__(self) -> str:
        return f"{self.team_id or '*'}/{self.ticket_type or '*'}: {self.role or self.signer_team_id}"


class PlanMilestone(models.Model):
    """A dated step of a plan, from confirming the requirement to going live; in order of their dates."""

    plan = models.ForeignKey(SolutionPlan, on_delete=models.CASCADE, related_name="milestone_rows")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(_("name"), max_length=60)
    due = models.DateField(_("due date"))
    done = models.BooleanField(_("done"), default=False)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["plan", "position", "id"]
        verbose_name = _("milestone")
        verbose_name_plural = _("milestones")
        indexes = [
            # overdue and reminder look-ups read only open milestones by date
            models.Index(fields=["due", "plan"], name="plan_milestone_open_due", condition=Q(done=False)),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.name} {self.due}"


class MilestoneReminder(models.Model):
    """A reminder sent for one milestone's due date: the unique row makes it fire once (a moved date
    reminds again)."""

    milestone = models.ForeignKey(PlanMilestone, on_delete=models.CASCADE, related_name="reminders")
    due = models.DateField()
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["milestone", "due"], name="milestone_reminder_once"),
        ]

    def __str__(self) -> str:
        return f"{self.milestone_id} {self.due}"
