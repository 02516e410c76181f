"""Triage by support staff: the assignee and the triage fields (a new urgency or type re-plans the SLA)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import support_agents
from accounts.services import audit_record, notify
from config.concurrency import check_version
from tickets import sla
from tickets.models import Ticket, TicketEvent
from tickets.services.shared import _event, _lock, _require_agent, _ticket_url
from tickets.services.sla_policies import _apply_due_times


@transaction.atomic
def ticket_assign(*, ticket: Ticket, by: User, assignee: User | None) -> Ticket:
    """Give the ticket to a support person (or to nobody)."""
    _require_agent(by)
    if assignee is not None and not support_agents().filter(pk=assignee.pk).exists():
        raise DjangoValidationError({"assignee": _("The assignee must be a member of the support staff.")})
    ticket = _lock(ticket)
    old = ticket.assignee
    if (old.pk if old else None) == (assignee.pk if assignee else None):
        return ticket
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    _event(
        ticket,
        by,
        TicketEvent.Kind.ASSIGN,
        field="assignee",
        old=old or "",
        new=assignee or "",
        assignee=assignee,
    )
    audit_record(
        actor=by,
        action="ticket.assign",
        obj=ticket,
        changes={"assignee": [old.username if old else None, assignee.username if assignee else None]},
    )
    if assignee is not None and assignee.pk != by.pk:
        notify(
            recipients=[assignee],
            kind="ticket.assigned",
            params={"key": ticket.key},
            url=_ticket_url(ticket),
        )
    return ticket


TRIAGE_FIELDS = (
    "type",
    "urgency",
    "feasibility",
    "feasibility_note",
    "effort_hours",
    "cost_estimate",
    "is_complex",
    "campaign",
)


@transaction.atomic
def ticket_update_triage(
    *, ticket: Ticket, by: User, expected_version: str | None = None, **changes: Any
) -> Ticket:
    """Change the triage fields; a new urgency recomputes the SLA due times from the new policy.

    With `expected_version` (the token the editor loaded), a ticket saved by someone else since is a conflict.
    """
    _require_agent(by)
    unknown = set(changes) - set(TRIAGE_FIELDS)
    if unknown:
        raise ValueError(f"not triage fields: {sorted(unknown)}")
    ticket = _lock(ticket)
    check_version(ticket, expected_version)
    changed: dict[str, list[str]] = {}
    for name, value in changes.items():
        old = getattr(ticket, name)
        if isinstance(old, Decimal) and value is not None:
            value = Decimal(value)
        if old != value:
            setattr(ticket, name, value)
            changed[name] = [str(old) if old is not None else "", str(value) if value is not None else ""]
            _event(
                ticket,
                by,
                TicketEvent.Kind.FIELD,
                field=name,
                old=old or "",
                new=value if value is not None else "",
            )
    if not changed:
        return ticket
    fields = {*changed, "updated_at"}
    if "urgency" in changed or "type" in changed:  # the type can choose another calendar
        _apply_due_times(ticket)
        sla.refresh(ticket, timezone.now())
        fields |= set(sla.SLA_FIELDS)
    ticket.save(update_fields=sorted(fields))
    audit_record(actor=by, action="ticket.update", obj=ticket, changes=changed)
    return ticket


def bulk_assign(*, tickets: Iterable[Ticket], by: User, assignee: User | None) -> int:
    """Assign many tickets; each is its own transaction. Returns how many changed."""
    return sum(1 for ticket in tickets if ticket_assign(ticket=ticket, by=by, assignee=assignee))
