"""Solution plans: written by support staff, approved or sent back by a manager."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import managers
from accounts.services import audit_record, notify
from tickets import permissions
from tickets.models import SolutionPlan, Ticket, TicketEvent
from tickets.services.errors import TicketConflict
from tickets.services.shared import _event, _require_agent, _ticket_url


@transaction.atomic
def plan_save(
    *,
    ticket: Ticket,
    by: User,
    implementation_path: str,
    milestones: list[dict[str, str]],
    resources: str = "",
    submit: bool = False,
) -> SolutionPlan:
    """Write the solution plan (an approved plan edited again needs approval again)."""
    _require_agent(by)
    if not implementation_path.strip():
        raise DjangoValidationError({"implementation_path": _("Describe the implementation path.")})
    status = SolutionPlan.Status.SUBMITTED if submit else SolutionPlan.Status.DRAFT
    plan, created = SolutionPlan.objects.update_or_create(
        ticket=ticket,
        defaults={
            "implementation_path": implementation_path,
            "milestones": milestones,
            "resources": resources,
            "status": status,
            "author": by,
            "reviewed_by": None,
            "reviewed_at": None,
        },
    )
    _event(ticket, by, TicketEvent.Kind.PLAN, field="plan", new=status, internal=True)
    audit_record(actor=by, action="ticket.plan", obj=ticket, changes={"status": status})
    if submit:
        notify(
            recipients=[m for m in managers() if m.pk != by.pk],
            kind="ticket.plan_submitted",
            params={"key": ticket.key},
            url=_ticket_url(ticket),
        )
    return plan


@transaction.atomic
def plan_review(*, ticket: Ticket, by: User, approve: bool, note: str = "") -> SolutionPlan:
    """A manager approves the submitted plan or sends it back with a note."""
    if not permissions.can_approve_plan(by):
        raise PermissionDenied(_("Only managers approve solution plans."))
    plan = SolutionPlan.objects.select_for_update().filter(ticket=ticket).first()
    if plan is None or plan.status != SolutionPlan.Status.SUBMITTED:
        raise TicketConflict(_("There is no plan waiting for approval."))
    if not approve and not note.strip():
        raise DjangoValidationError({"review_note": _("Say what needs to change.")})
    plan.status = SolutionPlan.Status.APPROVED if approve else SolutionPlan.Status.RETURNED
    plan.reviewed_by, plan.reviewed_at, plan.review_note = by, timezone.now(), note.strip()
    plan.save()
    _event(
        ticket,
        by,
        TicketEvent.Kind.PLAN,
        field="plan",
        old=SolutionPlan.Status.SUBMITTED,
        new=plan.status,
        note=note,
        internal=True,
    )
    audit_record(actor=by, action="ticket.plan_review", obj=ticket, changes={"status": plan.status})
    if plan.author_id != by.pk:
        notify(
            recipients=[plan.author],
            kind="ticket.plan_reviewed",
            params={"key": ticket.key, "status": plan.status, "text": note},
            url=_ticket_url(ticket),
        )
    return plan
