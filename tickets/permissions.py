"""Who may do what with a ticket: one place, used by the pages, the API and the services."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from accounts import roles
from accounts.models import User
from tickets.models import Ticket

S = Ticket.Status
AGENT, TEAM, SYSTEM = "agent", "team", "system"
REOPEN_WINDOW = timedelta(days=7)

# (from, to) -> the side that may take the step. `waiting_on_requester` returns to the status it
# came from, for the team or an agent (see `WAITING_RETURN`).
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (S.NEW, S.TRIAGED): frozenset({AGENT}),
    (S.NEW, S.REJECTED): frozenset({AGENT}),
    (S.TRIAGED, S.REJECTED): frozenset({AGENT}),
    (S.ANALYSIS, S.REJECTED): frozenset({AGENT}),
    (S.NEW, S.CANCELLED): frozenset({TEAM}),
    (S.TRIAGED, S.CANCELLED): frozenset({TEAM}),
    (S.ANALYSIS, S.CANCELLED): frozenset({TEAM}),
    (S.TRIAGED, S.ANALYSIS): frozenset({AGENT}),
    (S.TRIAGED, S.IN_PROGRESS): frozenset({AGENT}),
    (S.ANALYSIS, S.IN_PROGRESS): frozenset({AGENT}),
    (S.TRIAGED, S.WAITING_ON_REQUESTER): frozenset({AGENT}),
    (S.ANALYSIS, S.WAITING_ON_REQUESTER): frozenset({AGENT}),
    (S.IN_PROGRESS, S.WAITING_ON_REQUESTER): frozenset({AGENT}),
    (S.IN_PROGRESS, S.TESTING): frozenset({AGENT}),
    (S.TESTING, S.AWAITING_ACCEPTANCE): frozenset({AGENT}),
    (S.TESTING, S.IN_PROGRESS): frozenset({AGENT}),
    (S.AWAITING_ACCEPTANCE, S.RESOLVED): frozenset({TEAM}),
    (S.AWAITING_ACCEPTANCE, S.IN_PROGRESS): frozenset({TEAM}),
    (S.RESOLVED, S.CLOSED): frozenset({SYSTEM}),
    (S.RESOLVED, S.IN_PROGRESS): frozenset({TEAM}),
}
WAITING_RETURN = frozenset({AGENT, TEAM})


def sides_of(user: User | AnonymousUser | None, ticket: Ticket) -> set[str]:
    """The sides a person acts for on this ticket: agent (support staff) and/or team (the requesting team)."""
    if user is None:
        return {SYSTEM}
    sides: set[str] = set()
    if roles.is_agent(user):
        sides.add(AGENT)
    if user.is_authenticated and user.team_id is not None and user.team_id == ticket.team_id:
        sides.add(TEAM)
    return sides


def edge_sides(ticket: Ticket, to: str) -> frozenset[str] | None:
    """Who may take this step from the ticket's current status; None when there is no such step."""
    if ticket.status == S.WAITING_ON_REQUESTER:
        return WAITING_RETURN if to == ticket.previous_status else None
    return TRANSITIONS.get((ticket.status, to))


def reopen_window_open(ticket: Ticket) -> bool:
    return ticket.resolved_at is not None and timezone.now() - ticket.resolved_at <= REOPEN_WINDOW


def can_transition(user: User | AnonymousUser | None, ticket: Ticket, to: str) -> bool:
    """Whether the step exists from the current status and this person's side may take it."""
    allowed = edge_sides(ticket, to)
    if allowed is None or not (allowed & sides_of(user, ticket)):
        return False
    return not (ticket.status == S.RESOLVED and to == S.IN_PROGRESS and not reopen_window_open(ticket))


def allowed_transitions(user: User | AnonymousUser, ticket: Ticket) -> list[str]:
    """The next statuses this person may choose (for buttons), in workflow order."""
    order = [choice.value for choice in S]
    return [to for to in order if can_transition(user, ticket, to)]


def can_view(user: User | AnonymousUser, ticket: Ticket) -> bool:
    """Agents see every ticket; everyone else only their own team's."""
    return roles.is_agent(user) or (user.is_authenticated and user.team_id == ticket.team_id)


def can_see_internal(user: User | AnonymousUser) -> bool:
    """Internal notes and the internal audit entries are for support staff only."""
    return roles.is_agent(user)


def can_work(user: User | AnonymousUser) -> bool:
    """Triage, assign, plan, link, bulk actions."""
    return roles.is_agent(user)


def can_approve_plan(user: User | AnonymousUser) -> bool:
    return roles.is_manager(user)


def can_edit_sla(user: User | AnonymousUser) -> bool:
    return roles.is_manager(user)


def can_rate(user: User | AnonymousUser, ticket: Ticket) -> bool:
    """The requesting team rates delivered work once."""
    return TEAM in sides_of(user, ticket) and ticket.status in (S.RESOLVED, S.CLOSED)
