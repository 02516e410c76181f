"""Who may do what with a ticket: one place, used by the pages, the API and the services."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import roles
from accounts.models import User
from tickets.models import SolutionPlan, Ticket, TicketEvent

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
    # the system moves it on when every sign-off of its plan approved (tickets.signoff)
    (S.ANALYSIS, S.IN_PROGRESS): frozenset({AGENT, SYSTEM}),
    (S.TRIAGED, S.WAITING_ON_REQUESTER): frozenset({AGENT}),
    (S.ANALYSIS, S.WAITING_ON_REQUESTER): frozenset({AGENT}),
    (S.IN_PROGRESS, S.WAITING_ON_REQUESTER): frozenset({AGENT}),
    (S.IN_PROGRESS, S.TESTING): frozenset({AGENT}),
    (S.TESTING, S.AWAITING_ACCEPTANCE): frozenset({AGENT}),
    (S.TESTING, S.IN_PROGRESS): frozenset({AGENT}),
    (S.AWAITING_ACCEPTANCE, S.RESOLVED): frozenset({TEAM}),
    (S.AWAITING_ACCEPTANCE, S.IN_PROGRESS): frozenset({TEAM}),
    (S.RESOLVED, S.CLOSED): frozenset({SYSTEM}),
    # a monitoring alert that resolves before anyone touched its incident (tickets.services.alerts)
    (S.NEW, S.RESOLVED): frozenset({SYSTEM}),
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


def worked_on(user: User | AnonymousUser | None, ticket: Ticket) -> bool:
    """Whether this person worked on the ticket: its assignee now or ever before, or its plan's author."""
    if user is None or not user.is_authenticated:
        return False
    if ticket.assignee_id == user.pk:
        return True
    if SolutionPlan.objects.filter(ticket_id=ticket.pk, author_id=user.pk).exists():
        return True
    # assignments written before events named the assignee by id carry only the display name
    return TicketEvent.objects.filter(
        Q(assignee_id=user.pk) | Q(assignee__isnull=True, new=str(user)),
        ticket_id=ticket.pk,
        kind=TicketEvent.Kind.ASSIGN,
    ).exists()


def workers_of(ticket: Ticket) -> tuple[set[int], set[str]]:
    """Who worked on the ticket: the ids of its assignees (now and before) and plan author, and the names
    of assignees from events written before events named them by id."""
    ids: set[int] = {ticket.assignee_id} if ticket.assignee_id else set()
    legacy_names: set[str] = set()
    assignments = TicketEvent.objects.filter(ticket_id=ticket.pk, kind=TicketEvent.Kind.ASSIGN)
    for assignee_id, name in assignments.values_list("assignee_id", "new"):
        if assignee_id is None:
            legacy_names.add(name)
        else:
            ids.add(assignee_id)
    ids |= set(SolutionPlan.objects.filter(ticket_id=ticket.pk).values_list("author_id", flat=True))
    return ids, legacy_names


def eligible_acceptors(ticket: Ticket) -> list[User]:
    """Active members of the requesting team who did not work on the ticket (any of them may accept)."""
    ids, legacy_names = workers_of(ticket)
    members = User.objects.filter(team_id=ticket.team_id, is_active=True).exclude(pk__in=ids)
    return [member for member in members.order_by("username") if str(member) not in legacy_names]


def requesting_side_can_accept(ticket: Ticket) -> bool:
    """Whether someone on the requesting team did not work on the ticket (and so may accept it)."""
    return bool(eligible_acceptors(ticket))


def is_fallback_acceptor(user: User | AnonymousUser | None, ticket: Ticket) -> bool:
    """A manager outside the requesting team gives its verdict on delivered work only when everyone on
    the requesting side worked on it (docs/tickets.md, "Who accepts")."""
    return (
        user is not None
        and roles.is_manager(user)
        and TEAM not in sides_of(user, ticket)
        and not worked_on(user, ticket)
        and not requesting_side_can_accept(ticket)
    )


def acceptance_refusal(user: User | AnonymousUser | None, ticket: Ticket) -> str | None:
    """Why this person may not accept the delivered work, or None when they may."""
    if worked_on(user, ticket):
        return _("You worked on this request; someone on the requesting side accepts it.")
    if user is not None and TEAM in sides_of(user, ticket):
        return None
    if is_fallback_acceptor(user, ticket):
        return None
    return _("Only the requesting team accepts delivered work.")


def rating_refusal(user: User | AnonymousUser, ticket: Ticket) -> str | None:
    """Why this person may not rate the work, or None when they may (the status is checked apart)."""
    if worked_on(user, ticket):
        return _("You worked on this request; someone on the requesting side rates it.")
    if TEAM not in sides_of(user, ticket):
        return _("Only the requesting team may rate this request.")
    return None


def _verdict_allowed(user: User | AnonymousUser | None, ticket: Ticket, to: str) -> bool:
    """The requesting side's verdict on delivered work: accepting needs someone who did not work on it;
    refusing is open to the requesting team and, when it has nobody else, to a manager."""
    if to == S.RESOLVED:
        return acceptance_refusal(user, ticket) is None
    return TEAM in sides_of(user, ticket) or is_fallback_acceptor(user, ticket)


def may_take_step(user: User | AnonymousUser | None, ticket: Ticket, to: str) -> bool:
    """Whether the step exists from the current status and this person may take it (time limits aside)."""
    allowed = edge_sides(ticket, to)
    if allowed is None:
        return False
    if ticket.status == S.AWAITING_ACCEPTANCE:
        return _verdict_allowed(user, ticket, to)
    return bool(allowed & sides_of(user, ticket))


def can_transition(user: User | AnonymousUser | None, ticket: Ticket, to: str) -> bool:
    """Whether the step exists from the current status and this person's side may take it now."""
    if not may_take_step(user, ticket, to):
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
    """The requesting team rates delivered work once; nobody who worked on it does."""
    return ticket.status in (S.RESOLVED, S.CLOSED) and rating_refusal(user, ticket) is None


# --- on-call, escalation, chat robots, big-sale windows (tickets.oncall, tickets.escalation) --------------


def can_view_oncall(user: User | AnonymousUser) -> bool:
    """Support staff read rotas, who is on call, robots' delivery logs and big-sale windows."""
    return roles.is_agent(user)


def can_edit_oncall(user: User | AnonymousUser) -> bool:
    """Rotas, overrides and team chat robots are set by managers."""
    return roles.is_manager(user)


def can_manage_big_sale(user: User | AnonymousUser) -> bool:
    return roles.is_manager(user)


def can_edit_escalation(user: User | AnonymousUser) -> bool:
    return roles.is_manager(user)


def can_manage_routing(user: User | AnonymousUser) -> bool:
    """Team routing, agents' skills and capacity, request types (tickets.routing, tickets.request_types)."""
    return roles.is_manager(user)


def can_view_routing(user: User | AnonymousUser) -> bool:
    """The routing pages: support staff (an agent sees them and sets their own away)."""
    return roles.is_agent(user)
