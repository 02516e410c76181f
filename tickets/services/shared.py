"""What every ticket write shares: the history row, the row lock, the staff check and who is told."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import managers
from tickets import permissions
from tickets.models import Ticket, TicketEvent


def _event(
    ticket: Ticket,
    actor: User | None,
    kind: str,
    *,
    field: str = "",
    old: Any = "",
    new: Any = "",
    note: str = "",
    internal: bool = False,
    assignee: User | None = None,
) -> TicketEvent:
    return TicketEvent.objects.create(
        ticket=ticket,
        actor=actor,
        kind=kind,
        assignee=assignee,
        field=field,
        old="" if old is None else str(old),
        new="" if new is None else str(new),
        note=note,
        internal=internal,
    )


def _ticket_url(ticket: Ticket) -> str:
    return ticket.get_absolute_url()


def _requester_side(ticket: Ticket, exclude: User | None) -> list[User]:
    people = [ticket.requester, *ticket.watchers.all()]
    return [p for p in people if exclude is None or p.pk != exclude.pk]


def _acceptors_for_a_worker_requester(ticket: Ticket) -> list[User]:
    """When the requester worked on the ticket they may not accept it: who is told instead. The requesting
    team's managers who did not work on it, else its other members, else every manager who did not."""
    if not permissions.worked_on(ticket.requester, ticket):
        return []
    eligible = permissions.eligible_acceptors(ticket)
    if eligible:
        lead_ids = set(managers().filter(team_id=ticket.team_id).values_list("pk", flat=True))
        return [p for p in eligible if p.pk in lead_ids] or eligible
    ids, legacy_names = permissions.workers_of(ticket)
    return [m for m in managers().exclude(pk__in=ids) if str(m) not in legacy_names]


def _support_side(ticket: Ticket, exclude: User | None) -> list[User]:
    people = [ticket.assignee] if ticket.assignee_id else list(managers())
    return [p for p in people if p is not None and (exclude is None or p.pk != exclude.pk)]


def _lock(ticket: Ticket) -> Ticket:
    return (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("requester", "assignee", "team")
        .get(pk=ticket.pk)
    )


def _require_agent(user: User) -> None:
    if not permissions.can_work(user):
        raise PermissionDenied(_("Only support staff may do this."))
