"""Cross-department sign-off of solution plans (issue 21).

A submitted plan needs every sign-off of its current revision: each names a role (manager, support agent,
IT administrator) or a team, and is given by one person who holds that role or belongs to that team. All
must approve; any one may send the plan back with a reason, which ends the revision: the next submission
starts a new revision with every sign-off waiting again. Nobody approves twice in one revision, and the
plan's author approves in no role (so a manager never approves their own plan). With no list chosen and
no default configured, a plan needs one manager's sign-off: the single-manager approval of before.
When the last sign-off approves, a ticket waiting in analysis moves on to in progress.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import roles
from accounts.backends import user_access
from accounts.models import Team, User
from accounts.selectors import managers, support_agents
from accounts.services import audit_record, notify
from tickets.models import PlanSignoff, SignoffDefault, SignoffRole, SolutionPlan, Ticket, TicketEvent
from tickets.services.errors import TicketConflict
from tickets.services.shared import _event, _ticket_url

log = logging.getLogger(__name__)
MAX_SIGNERS = 10


@dataclass(frozen=True)
class Signer:
    """Who must sign: a role (`role:manager`) or a team (`team:7`)."""

    role: str = ""
    team_id: int | None = None

    @property
    def code(self) -> str:
        return f"role:{self.role}" if self.role else f"team:{self.team_id}"


DEFAULT_SIGNERS = (Signer(role=SignoffRole.MANAGER),)


def signer_choices() -> list[tuple[str, str]]:
    """Every role and team a plan's sign-off list may name, as (code, words) for a form."""
    choices = [(f"role:{value}", str(label)) for value, label in SignoffRole.choices]
    choices += [(f"team:{team.pk}", str(team)) for team in Team.objects.order_by("name")]
    return choices


def signers_parse(codes: list[str]) -> list[Signer]:
    """Sign-off codes as chosen on a form or sent by a script; a bad code is named in the message."""
    signers: list[Signer] = []
    team_ids = set(Team.objects.values_list("pk", flat=True))
    for code in codes:
        kind, _sep, value = str(code).partition(":")
        if kind == "role" and value in SignoffRole.values:
            signer = Signer(role=value)
        elif kind == "team" and value.isdigit() and int(value) in team_ids:
            signer = Signer(team_id=int(value))
        else:
            raise DjangoValidationError({"signoffs": _("Unknown sign-off: %(code)s.") % {"code": code}})
        if signer not in signers:
            signers.append(signer)
    if len(signers) > MAX_SIGNERS:
        raise DjangoValidationError({"signoffs": _("At most %(n)d sign-offs.") % {"n": MAX_SIGNERS}})
    return signers


def default_signers(ticket: Ticket) -> list[Signer]:
    """The configured defaults for the ticket's team and type (most specific first), else one manager."""
    rows = list(
        SignoffDefault.objects.filter(Q(team_id=ticket.team_id) | Q(team__isnull=True))
        .filter(Q(ticket_type=ticket.type) | Q(ticket_type=""))
        .order_by("position", "id")
    )
    for team_id, ticket_type in ((ticket.team_id, ticket.type), (ticket.team_id, ""), (None, ticket.type)):
        chosen = [r for r in rows if r.team_id == team_id and r.ticket_type == ticket_type]
        if chosen:
            return [Signer(role=r.role, team_id=r.signer_team_id) for r in chosen]
    return list(DEFAULT_SIGNERS)


def _holds(user: User, role: str) -> bool:
    if role == SignoffRole.MANAGER:
        return roles.is_manager(user)
    if role == SignoffRole.AGENT:
        return roles.is_agent(user)
    if role == SignoffRole.ADMIN:
        return user.is_staff or roles.ADMIN in user_access(user).groups
    return False


def may_sign(user: User, signoff: PlanSignoff) -> bool:
    """Whether this person holds the sign-off's role or belongs to its team (the author rule aside)."""
    if not user.is_authenticated or not user.is_active:
        return False
    if signoff.team_id is not None:
        return user.team_id == signoff.team_id
    return _holds(user, signoff.role)


def signers_people(signer: Signer | PlanSignoff) -> QuerySet[User]:
    """The active people who may give one sign-off."""
    team_id = signer.team_id
    if team_id is not None:
        return User.objects.filter(is_active=True, team_id=team_id)
    if signer.role == SignoffRole.MANAGER:
        return managers()
    if signer.role == SignoffRole.AGENT:
        return support_agents()
    return User.objects.filter(Q(is_staff=True) | Q(groups__name=roles.ADMIN), is_active=True).distinct()


def current_revision(plan: SolutionPlan) -> int:
    return plan.signoffs.aggregate(top=Max("revision"))["top"] or 0


def current_signoffs(plan: SolutionPlan) -> list[PlanSignoff]:
    """The sign-offs of the plan's latest revision, in order, with who decided."""
    revision = current_revision(plan)
    return list(
        plan.signoffs.filter(revision=revision)
        .select_related("team", "decided_by")
        .order_by("position", "id")
    )


def signoffs_start(*, plan: SolutionPlan, by: User, signers: list[Signer] | None) -> list[PlanSignoff]:
    """Open a new revision of sign-offs for a plan being submitted (inside the caller's transaction);
    every sign-off waits, and the people who may give it are told."""
    chosen = list(signers) if signers else default_signers(plan.ticket)
    for signer in chosen:
        if not signers_people(signer).exclude(pk=plan.author_id).exists():
            raise DjangoValidationError(
                {
                    "signoffs": _("Nobody but the author can give the sign-off “%(name)s”.")
                    % {"name": _name(signer)}
                }
            )
    revision = current_revision(plan) + 1
    rows = PlanSignoff.objects.bulk_create(
        PlanSignoff(plan=plan, revision=revision, position=i, role=s.role, team_id=s.team_id)
        for i, s in enumerate(chosen)
    )
    recipients: dict[int, User] = {}
    for signer in chosen:
        for person in signers_people(signer).exclude(pk=by.pk).exclude(pk=plan.author_id):
            recipients[person.pk] = person
    audit_record(
        actor=by,
        action="ticket.plan_signoffs",
        obj=plan.ticket,
        changes={"revision": revision, "signoffs": [s.code for s in chosen]},
    )
    if recipients:
        notify(
            recipients=list(recipients.values()),
            kind="ticket.plan_submitted",
            params={"key": plan.ticket.key},
            url=_signoff_url(plan.ticket),
        )
    return rows


def _name(signer: Signer) -> str:
    if signer.role:
        return str(SignoffRole(signer.role).label)
    return str(Team.objects.filter(pk=signer.team_id).first() or signer.team_id)


def _signoff_url(ticket: Ticket) -> str:
    from django.urls import reverse

    return reverse("tickets:plan_signoff", args=[ticket.key])


def signoff_refusal(user: User, plan: SolutionPlan, rows: list[PlanSignoff] | None = None) -> str | None:
    """Why this person may not decide on the plan now, or None when a waiting sign-off is theirs."""
    if plan.status != SolutionPlan.Status.SUBMITTED:
        return _("There is no plan waiting for approval.")
    if plan.author_id == user.pk:
        return _("You wrote this plan; someone else signs it off.")
    rows = current_signoffs(plan) if rows is None else rows
    if any(r.decided_by_id == user.pk for r in rows):
        return _("You have already approved this revision of the plan.")
    if not any(r.decision == PlanSignoff.Decision.PENDING and may_sign(user, r) for r in rows):
        return _("None of this plan's waiting sign-offs is yours to give.")
    return None


def slot_for(user: User, rows: list[PlanSignoff]) -> PlanSignoff | None:
    """The first waiting sign-off this person may give (roles before teams as listed)."""
    return next((r for r in rows if r.decision == PlanSignoff.Decision.PENDING and may_sign(user, r)), None)


def _legacy_rows(plan: SolutionPlan) -> None:
    """A plan submitted before sign-offs existed waits for one manager."""
    if plan.status == SolutionPlan.Status.SUBMITTED and not plan.signoffs.exists():
        PlanSignoff.objects.create(plan=plan, revision=1, position=0, role=SignoffRole.MANAGER)


@transaction.atomic
def signoff_decide(*, ticket: Ticket, by: User, approve: bool, note: str = "") -> SolutionPlan:
    """Give one sign-off (approve) or send the plan back with a reason. Raises PermissionDenied when the
    person may not, TicketConflict when nothing waits, ValidationError when a send-back has no reason."""
    plan = SolutionPlan.objects.select_for_update().select_related("ticket").filter(ticket=ticket).first()
    if plan is None or plan.status != SolutionPlan.Status.SUBMITTED:
        raise TicketConflict(_("There is no plan waiting for approval."))
    _legacy_rows(plan)
    rows = current_signoffs(plan)
    refusal = signoff_refusal(by, plan, rows)
    if refusal:
        raise PermissionDenied(refusal)
    if not approve and not note.strip():
        raise DjangoValidationError({"note": _("Say what needs to change.")})
    slot = slot_for(by, rows)
    assert slot is not None  # signoff_refusal found it
    now = timezone.now()
    slot.decision = PlanSignoff.Decision.APPROVED if approve else PlanSignoff.Decision.RETURNED
    slot.decided_by, slot.decided_at, slot.note = by, now, note.strip()
    slot.save(update_fields=["decision", "decided_by", "decided_at", "note"])
    _event(
        ticket,
        by,
        TicketEvent.Kind.PLAN,
        field="signoff",
        old=slot.signer_label,
        new=slot.decision,
        note=note.strip(),
        internal=True,
    )
    audit_record(
        actor=by,
        action="ticket.plan_signoff",
        obj=ticket,
        changes={"revision": slot.revision, "signoff": slot.signer_label, "decision": slot.decision},
    )
    done = not approve or all(r.decision == PlanSignoff.Decision.APPROVED for r in rows)
    if done:
        _plan_decided(plan, ticket, by, approved=approve, note=note.strip(), when=now)
    return plan


def _plan_decided(
    plan: SolutionPlan, ticket: Ticket, by: User, *, approved: bool, note: str, when: datetime
) -> None:
    old = plan.status
    plan.status = SolutionPlan.Status.APPROVED if approved else SolutionPlan.Status.RETURNED
    plan.reviewed_by, plan.reviewed_at, plan.review_note = by, when, note
    plan.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note", "updated_at"])
    _event(
        ticket, by, TicketEvent.Kind.PLAN, field="plan", old=old, new=plan.status, note=note, internal=True
    )
    audit_record(actor=by, action="ticket.plan_review", obj=ticket, changes={"status": plan.status})
    if plan.author_id != by.pk:
        notify(
            recipients=[plan.author],
            kind="ticket.plan_reviewed",
            params={"key": ticket.key, "status": plan.status, "text": note},
            url=_ticket_url(ticket),
        )
    if approved and ticket.status == Ticket.Status.ANALYSIS:
        from tickets.services.workflow import ticket_transition

        ticket_transition(
            ticket=ticket, to=Ticket.Status.IN_PROGRESS, by=None, note=_("Every sign-off approved the plan.")
        )
        log.info("plan of %s approved by every sign-off; ticket moved to in progress", ticket.key)


def plans_waiting_for(user: User) -> QuerySet[SolutionPlan]:
    """Submitted plans with a waiting sign-off this person may give (not their own plans)."""
    role_values = [value for value in SignoffRole.values if _holds(user, value)]
    mine = Q(team_id=user.team_id) if user.team_id else Q(pk__in=[])
    if role_values:
        mine |= Q(role__in=role_values)
    latest = PlanSignoff.objects.filter(plan=OuterRef("plan")).order_by("-revision").values("revision")[:1]
    waiting = PlanSignoff.objects.filter(
        mine, decision=PlanSignoff.Decision.PENDING, revision=Subquery(latest)
    )
    return (
        SolutionPlan.objects.filter(status=SolutionPlan.Status.SUBMITTED, signoffs__in=waiting)
        .exclude(author=user)
        .select_related("ticket", "author")
        .distinct()
        .order_by("updated_at", "id")
    )
