"""The ticket's state machine: guarded status changes, acceptance, and moving many tickets at once."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import support_agents
from accounts.services import audit_record, notify
from tickets import permissions, sla
from tickets.models import Comment, SolutionPlan, Ticket, TicketEvent
from tickets.services.errors import (
    TransitionDataMissing,
    TransitionError,
    TransitionForbidden,
    TransitionNotAllowed,
)
from tickets.services.intake import round_robin_agent
from tickets.services.shared import (
    _acceptors_for_a_worker_requester,
    _event,
    _lock,
    _requester_side,
    _support_side,
    _ticket_url,
)
from tickets.services.sla_policies import _targets

log = logging.getLogger(__name__)
S = Ticket.Status


def _check_transition(ticket: Ticket, to: str, by: User | None) -> None:
    allowed = permissions.edge_sides(ticket, to)
    if allowed is None:
        raise TransitionNotAllowed(
            _("A request cannot go from %(old)s to %(new)s.")
            % {"old": S(ticket.status).label, "new": S(to).label if to in S.values else to}
        )
    if ticket.status == S.AWAITING_ACCEPTANCE and to == S.RESOLVED:
        refusal = permissions.acceptance_refusal(by, ticket)
        if refusal:
            raise TransitionForbidden(refusal)
    elif not permissions.may_take_step(by, ticket, to):
        raise TransitionForbidden(_("You may not move this request to %(new)s.") % {"new": S(to).label})
    if ticket.status == S.RESOLVED and to == S.IN_PROGRESS and not permissions.reopen_window_open(ticket):
        raise TransitionNotAllowed(_("A request can be reopened only within 7 days of being resolved."))


def _check_data(
    ticket: Ticket, to: str, *, note: str, reason: str, feasibility: str, assignee: User | None
) -> None:
    errors: dict[str, str] = {}
    if ticket.status == S.NEW and to == S.TRIAGED:
        if feasibility not in Ticket.Feasibility.values:
            errors["feasibility"] = _("Choose the feasibility: %(choices)s.") % {
                "choices": " / ".join(str(label) for label in Ticket.Feasibility.labels)
            }
        if assignee is not None and not support_agents().filter(pk=assignee.pk).exists():
            errors["assignee"] = _("The assignee must be a member of the support staff.")
    if to == S.REJECTED and not reason.strip():
        errors["reason"] = _("Say why the request is rejected.")
    if to == S.WAITING_ON_REQUESTER and not note.strip():
        errors["note"] = _("Write the question for the requester.")
    if ticket.status == S.AWAITING_ACCEPTANCE and to == S.IN_PROGRESS and not reason.strip():
        errors["reason"] = _("Say what is missing or wrong.")
    if ticket.status == S.RESOLVED and to == S.IN_PROGRESS and not reason.strip():
        errors["reason"] = _("Say why the request is reopened.")
    if (
        ticket.status == S.ANALYSIS
        and to == S.IN_PROGRESS
        and (ticket.type == Ticket.Type.FEATURE or ticket.is_complex)
    ):
        plan = SolutionPlan.objects.filter(ticket=ticket).first()
        if plan is None or plan.status != SolutionPlan.Status.APPROVED:
            errors["plan"] = _("Features and complex requests need an approved solution plan first.")
    if errors:
        raise TransitionDataMissing(next(iter(errors.values())), errors)


@transaction.atomic
def ticket_transition(
    *,
    ticket: Ticket,
    to: str,
    by: User | None,
    note: str = "",
    reason: str = "",
    feasibility: str = "",
    feasibility_note: str = "",
    assignee: User | None = None,
) -> Ticket:
    """Move a ticket along the workflow (by=None is the system). Raises TransitionNotAllowed (409),
    TransitionForbidden (403) or TransitionDataMissing (400)."""
    ticket = _lock(ticket)
    _check_transition(ticket, to, by)
    _check_data(ticket, to, note=note, reason=reason, feasibility=feasibility, assignee=assignee)
    now = timezone.now()
    old = ticket.status
    fields = {"status", "updated_at", *sla.SLA_FIELDS}
    if old == S.NEW and to == S.TRIAGED:
        old_feasibility = ticket.feasibility
        ticket.feasibility = feasibility
        ticket.feasibility_note = feasibility_note or ticket.feasibility_note
        fields |= {"feasibility", "feasibility_note"}
        _event(ticket, by, TicketEvent.Kind.FIELD, field="feasibility", old=old_feasibility, new=feasibility)
        chosen = assignee or (ticket.assignee if ticket.assignee_id else None) or round_robin_agent(ticket)
        if chosen is not None and chosen.pk != ticket.assignee_id:
            _event(
                ticket,
                by,
                TicketEvent.Kind.ASSIGN,
                field="assignee",
                old=ticket.assignee or "",
                new=chosen,
                assignee=chosen,
            )
            ticket.assignee = chosen
            fields.add("assignee")
    if to == S.WAITING_ON_REQUESTER:
        ticket.previous_status = old
        fields.add("previous_status")
        sla.pause(ticket, now)
    if old == S.WAITING_ON_REQUESTER:
        ticket.previous_status = ""
        fields.add("previous_status")
        sla.resume(ticket, _targets(ticket), now)
    if to == S.RESOLVED:
        ticket.resolved_at = now
        fields.add("resolved_at")
        if ticket.first_response_at is None:
            # resolved without a public reply: the resolution is the first response (docs/tickets.md)
            ticket.first_response_at = now
            fields.add("first_response_at")
            _event(
                ticket,
                None,
                TicketEvent.Kind.SLA,
                field="first_response_at",
                new=now.isoformat(),
                note="resolved without a reply",
            )
    if to == S.CLOSED:
        ticket.closed_at = now
        fields.add("closed_at")
    if old == S.RESOLVED and to == S.IN_PROGRESS:
        ticket.resolved_at = None
        fields.add("resolved_at")
    ticket.status = to
    sla.refresh(ticket, now)
    ticket.save(update_fields=sorted(fields))
    _event(
        ticket, by, TicketEvent.Kind.STATUS, field="status", old=old, new=to, note=(reason or note).strip()
    )
    if to == S.WAITING_ON_REQUESTER:
        Comment.objects.create(ticket=ticket, author=by, body=note.strip(), internal=False)
        if ticket.first_response_at is None and by is not None and by.pk != ticket.requester_id:
            _mark_first_response(ticket, now)
    audit_record(actor=by, action="ticket.transition", obj=ticket, changes={"status": [old, to]})
    _notify_transition(ticket, by, old, to, reason or note)
    log.info("ticket %s %s -> %s by %s", ticket.key, old, to, by.username if by else "system")
    return ticket


def _notify_transition(ticket: Ticket, by: User | None, old: str, to: str, text: str) -> None:
    sides = permissions.sides_of(by, ticket)
    if permissions.TEAM in sides and permissions.AGENT not in sides:
        recipients = _support_side(ticket, by)
    else:
        recipients = _requester_side(ticket, by)
        if to == S.TRIAGED and ticket.assignee_id and (by is None or ticket.assignee_id != by.pk):
            recipients.append(ticket.assignee)
        if to == S.AWAITING_ACCEPTANCE:
            known = {p.pk for p in recipients} | ({by.pk} if by else set())
            recipients += [p for p in _acceptors_for_a_worker_requester(ticket) if p.pk not in known]
    notify(
        recipients=recipients,
        kind="ticket.status",
        verb=f"ticket.{to}",
        params={"key": ticket.key, "status": to, "text": text},
        url=_ticket_url(ticket),
    )


def _mark_first_response(ticket: Ticket, now: datetime) -> None:
    ticket.first_response_at = now
    sla.refresh(ticket, now)
    ticket.save(update_fields=["first_response_at", *sla.SLA_FIELDS])
    _event(ticket, None, TicketEvent.Kind.SLA, field="first_response_at", new=now.isoformat())


def ticket_accept(*, ticket: Ticket, by: User) -> Ticket:
    """The requesting team accepts delivered work: the ticket is resolved."""
    return ticket_transition(ticket=ticket, to=S.RESOLVED, by=by)


def ticket_reject_delivery(*, ticket: Ticket, by: User, reason: str) -> Ticket:
    """The requesting team refuses delivered work: back to in_progress with the reason."""
    if ticket.status == S.AWAITING_ACCEPTANCE:
        return ticket_transition(ticket=ticket, to=S.IN_PROGRESS, by=by, reason=reason)
    raise TransitionNotAllowed(_("Only delivered work awaiting acceptance can be rejected."))


def bulk_transition(
    *, tickets: Iterable[Ticket], by: User, to: str, note: str = "", feasibility: str = ""
) -> tuple[int, list[str]]:
    """Move many tickets; each on its own. Returns (moved, error messages per key)."""
    moved, errors = 0, []
    for ticket in tickets:
        try:
            ticket_transition(ticket=ticket, to=to, by=by, note=note, reason=note, feasibility=feasibility)
            moved += 1
        except TransitionError as exc:
            errors.append(f"{ticket.key}: {exc}")
    return moved, errors
