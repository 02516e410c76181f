"""Solution plans: written by support staff, signed off (tickets.signoff) or sent back; milestones kept
in order (tickets.milestones)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from tickets import milestones as plan_milestones
from tickets import signoff
from tickets.models import SolutionPlan, Ticket, TicketEvent
from tickets.services.shared import _event, _require_agent


@transaction.atomic
def plan_save(
    *,
    ticket: Ticket,
    by: User,
    implementation_path: str,
    milestones: list[dict[str, str]],
    resources: str = "",
    submit: bool = False,
    signoffs: list[str] | None = None,
) -> SolutionPlan:
    """Write the solution plan (an approved plan edited again needs approval again). Milestones must be
    in date order; a submission opens a new revision of sign-offs (`signoffs` codes, else the defaults)."""
    _require_agent(by)
    if not implementation_path.strip():
        raise DjangoValidationError({"implementation_path": _("Describe the implementation path.")})
    dated = plan_milestones.milestones_read(milestones)
    plan_milestones.milestones_check_order(dated)
    signers = signoff.signers_parse(signoffs) if signoffs else None
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
    plan_milestones.milestones_replace(plan=plan, items=dated)
    _event(ticket, by, TicketEvent.Kind.PLAN, field="plan", new=status, internal=True)
    audit_record(actor=by, action="ticket.plan", obj=ticket, changes={"status": status})
    if submit:
        signoff.signoffs_start(plan=plan, by=by, signers=signers)
    return plan


def plan_review(*, ticket: Ticket, by: User, approve: bool, note: str = "") -> SolutionPlan:
    """One sign-off: approve the submitted plan or send it back with a note (tickets.signoff)."""
    try:
        return signoff.signoff_decide(ticket=ticket, by=by, approve=approve, note=note)
    except DjangoValidationError as exc:
        # the review form names the note `review_note`
        if hasattr(exc, "error_dict") and "note" in exc.error_dict:
            raise DjangoValidationError({"review_note": exc.error_dict["note"]}) from exc
        raise
