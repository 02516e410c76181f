"""Who gets a request: the team's routing (round-robin, least loaded, by skill then least loaded) among the
support agents who are not away and have room under their capacity.

`agent_for_ticket` is the one entry point (tickets.services.intake.round_robin_agent calls it): other rules
that pick an assignee (e.g. on call outside business hours) wrap that one function. Choosing locks the
candidates' AgentRouting rows in id order, so two requests routed at once see each other's assignment and
never both fill the last slot of one agent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Team, User
from accounts.selectors import managers, support_agents
from accounts.services import audit_record, notify
from tickets import permissions
from tickets.models import AssignmentCursor, Ticket
from tickets.routing_tables import AgentRouting, RoutingMiss, Skill, TeamRouting, TypeSkill

log = logging.getLogger(__name__)

# How much one open request weighs in an agent's load and against their capacity (the one place).
URGENCY_WEIGHTS: dict[str, int] = {
    Ticket.Urgency.URGENT: 3,
    Ticket.Urgency.ROUTINE: 2,
    Ticket.Urgency.PLANNED: 1,
}


def ticket_weight(urgency: str) -> int:
    return URGENCY_WEIGHTS.get(urgency, 1)


def _weight_expression() -> Case:
    return Case(
        *[When(urgency=urgency, then=Value(weight)) for urgency, weight in URGENCY_WEIGHTS.items()],
        default=Value(1),
        output_field=IntegerField(),
    )


def open_loads(user_ids: Iterable[int]) -> dict[int, int]:
    """Each agent's weighted load: the sum of the weights of their open requests (one query)."""
    ids = list(user_ids)
    rows = (
        Ticket.objects.filter(assignee_id__in=ids, status__in=Ticket.OPEN_STATUSES)
        .values("assignee_id")
        .annotate(load=Sum(_weight_expression()))
        .order_by()
    )
    loads = dict.fromkeys(ids, 0)
    loads.update({row["assignee_id"]: row["load"] or 0 for row in rows})
    return loads


def routing_pool() -> QuerySet[User]:
    """Support staff of a support team who take new work (available, not away)."""
    return (
        support_agents()
        .filter(is_available=True, team__is_support=True)
        .exclude(routing__away=True)
        .order_by("pk")
    )


def team_routing(team_id: int) -> TeamRouting:
    routing, _created = TeamRouting.objects.get_or_create(team_id=team_id)
    return routing


def required_skill_ids(ticket: Ticket) -> set[int]:
    """The skills a request needs: its request type's and those its ticket type needs in its team."""
    ids = set(
        TypeSkill.objects.filter(team_id=ticket.team_id, type=ticket.type).values_list("skill_id", flat=True)
    )
    if ticket.request_type_id:
        ids |= set(ticket.request_type.skills.values_list("pk", flat=True))
    return ids


@dataclass(frozen=True)
class Candidate:
    user_id: int
    load: int
    capacity: int | None
    skills: frozenset[int]

    def has_room_for(self, weight: int) -> bool:
        return self.capacity is None or self.load + weight <= self.capacity


def choose(
    mode: str,
    candidates: Sequence[Candidate],
    *,
    weight: int,
    required: set[int],
    last_user_id: int | None,
) -> int | None:
    """The chosen agent's id (pure: the rule itself, for tests and the reference simulation).

    Candidates are in id order. Skill: only those holding every required skill. Everyone at capacity is
    skipped. Round-robin: the first after the last chosen (wrapping). Load and skill: the least weighted
    load, ties to the lowest id."""
    pool = [c for c in candidates if c.has_room_for(weight)]
    if mode == TeamRouting.Mode.SKILL:
        pool = [c for c in pool if required <= c.skills]
    if not pool:
        return None
    if mode == TeamRouting.Mode.ROUND_ROBIN:
        last = last_user_id or 0
        return next((c.user_id for c in pool if c.user_id > last), pool[0].user_id)
    return min(pool, key=lambda c: (c.load, c.user_id)).user_id


@transaction.atomic
def agent_for_ticket(ticket: Ticket | None = None) -> User | None:
    """The agent who should take `ticket` by its team's routing, or None (nobody qualifies: the ticket
    stays unassigned and the team lead is told once). Without a ticket: plain round-robin, no team."""
    ids = list(routing_pool().values_list("pk", flat=True))
    if ticket is not None:
        routing = TeamRouting.objects.select_for_update().filter(team_id=ticket.team_id).first()
        if routing is None:
            team_routing(ticket.team_id)
            routing = TeamRouting.objects.select_for_update().get(team_id=ticket.team_id)
        mode, weight, required = routing.mode, ticket_weight(ticket.urgency), required_skill_ids(ticket)
    else:  # no ticket (old callers): plain round-robin on the support-wide cursor
        AssignmentCursor.objects.get_or_create(name="support")
        routing = AssignmentCursor.objects.select_for_update().get(name="support")
        mode, weight, required = TeamRouting.Mode.ROUND_ROBIN, 0, set()
    AgentRouting.objects.bulk_create([AgentRouting(user_id=pk) for pk in ids], ignore_conflicts=True)
    # the lock that makes choosing safe: every candidate's row, always in the same order
    locked = list(
        AgentRouting.objects.select_for_update()
        .filter(user_id__in=ids, away=False)
        .order_by("user_id")
        .values_list("user_id", "capacity")
    )
    skills: dict[int, set[int]] = {}
    if mode == TeamRouting.Mode.SKILL:
        for user_id, skill_id in AgentRouting.skills.through.objects.filter(
            agentrouting__user_id__in=[row[0] for row in locked]
        ).values_list("agentrouting__user_id", "skill_id"):
            skills.setdefault(user_id, set()).add(skill_id)
    loads = open_loads(row[0] for row in locked)
    candidates = [
        Candidate(user_id, loads[user_id], capacity, frozenset(skills.get(user_id, ())))
        for user_id, capacity in locked
    ]
    chosen = choose(
        mode,
        candidates,
        weight=weight,
        required=required,
        last_user_id=routing.last_user_id,
    )
    if chosen is None:
        if ticket is not None:
            _tell_lead_once(ticket, routing)
        return None
    routing.last_user_id = chosen
    routing.save(update_fields=["last_user"])
    return User.objects.get(pk=chosen)


def _tell_lead_once(ticket: Ticket, routing: TeamRouting) -> None:
    _miss, created = RoutingMiss.objects.get_or_create(ticket=ticket)
    if not created:
        return
    recipients = [routing.lead] if routing.lead_id else list(managers())
    log.info("ticket %s: nobody can take it", ticket.key)
    notify(
        recipients=recipients,
        kind="ticket.unrouted",
        params={"key": ticket.key, "title": ticket.title},
        url=ticket.get_absolute_url(),
    )


def ticket_route_new(*, ticket: Ticket, default_assignee: User | None = None) -> User | None:
    """A request just filed: its request type's default assignee, else routing when its team assigns at
    filing time; records the assignment. Returns who got it (None: stays unassigned)."""
    from tickets.services.shared import _event

    chosen = default_assignee
    if chosen is not None and not routing_pool().filter(pk=chosen.pk).exists():
        chosen = None  # away or gone: routing decides instead
    if chosen is None:
        routing = TeamRouting.objects.filter(team_id=ticket.team_id).first()
        if default_assignee is None and (routing is None or not routing.assign_on_create):
            return None
        from tickets.services.intake import round_robin_agent  # the one entry point others wrap

        chosen = round_robin_agent(ticket=ticket)
    if chosen is None:
        return None
    Ticket.objects.filter(pk=ticket.pk).update(assignee=chosen)
    ticket.assignee = chosen
    _event(ticket, None, "assign", field="assignee", old="", new=chosen, assignee=chosen)
    audit_record(
        actor=None,
        action="ticket.assign",
        obj=ticket,
        changes={"assignee": [None, chosen.username], "by": "routing"},
    )
    notify(
        recipients=[chosen], kind="ticket.assigned", params={"key": ticket.key}, url=ticket.get_absolute_url()
    )
    return chosen


# --- settings: team routing, agents' availability, capacity and skills ------------------------------------


def _require_manager(user: User) -> None:
    if not permissions.can_manage_routing(user):
        raise PermissionDenied(_("Only managers may change routing."))


@transaction.atomic
def team_routing_save(
    *,
    team: Team,
    by: User,
    mode: str,
    assign_on_create: bool = False,
    lead: User | None = None,
    type_skills: dict[str, list[Skill]] | None = None,
) -> TeamRouting:
    """Set a team's routing (manager); `type_skills` replaces the skills each ticket type needs."""
    _require_manager(by)
    if mode not in TeamRouting.Mode.values:
        raise DjangoValidationError({"mode": _("Choose round-robin, least loaded or by skill.")})
    routing = TeamRouting.objects.select_for_update().filter(team=team).first() or TeamRouting(team=team)
    old = {"mode": routing.mode, "assign_on_create": routing.assign_on_create, "lead": routing.lead_id}
    routing.mode, routing.assign_on_create, routing.lead = mode, assign_on_create, lead
    routing.save()
    if type_skills is not None:
        TypeSkill.objects.filter(team=team).delete()
        TypeSkill.objects.bulk_create(
            [
                TypeSkill(team=team, type=type_, skill=skill)
                for type_, skills in type_skills.items()
                for skill in skills
            ]
        )
    new = {"mode": mode, "assign_on_create": assign_on_create, "lead": lead.pk if lead else None}
    audit_record(
        actor=by,
        action="team.routing",
        obj=team,
        changes={k: [old[k], new[k]] for k in new if old[k] != new[k]}
        | ({"type_skills": {t: [s.name for s in v] for t, v in type_skills.items()}} if type_skills else {}),
    )
    return routing


def _agent_row(user: User) -> AgentRouting:
    AgentRouting.objects.get_or_create(user=user)
    return AgentRouting.objects.select_for_update().get(user=user)


@transaction.atomic
def agent_away_set(*, agent: User, by: User, away: bool) -> AgentRouting:
    """An agent marks themselves away (receives nothing new) or back."""
    if by.pk != agent.pk or not permissions.can_work(by):
        raise PermissionDenied(_("Only an agent may mark themselves away or back."))
    row = _agent_row(agent)
    if row.away == away:
        return row
    row.away = away
    row.away_since = timezone.now() if away else None
    row.save(update_fields=["away", "away_since"])
    audit_record(actor=by, action="agent.away" if away else "agent.back", obj=agent, changes={"away": away})
    return row


@transaction.atomic
def agent_routing_save(
    *, agent: User, by: User, capacity: int | None, skills: Iterable[Skill]
) -> AgentRouting:
    """A manager sets an agent's capacity (None: no limit) and skills."""
    _require_manager(by)
    if not support_agents().filter(pk=agent.pk).exists():
        raise DjangoValidationError({"agent": _("Only support staff have routing settings.")})
    if capacity is not None and capacity < 0:
        raise DjangoValidationError({"capacity": _("Capacity cannot be negative.")})
    row = _agent_row(agent)
    skills = list(skills)
    old_skills = sorted(row.skills.values_list("name", flat=True))
    changes = {}
    if row.capacity != capacity:
        changes["capacity"] = [row.capacity, capacity]
        row.capacity = capacity
        row.save(update_fields=["capacity"])
    new_skills = sorted(s.name for s in skills)
    if new_skills != old_skills:
        row.skills.set(skills)
        changes["skills"] = [old_skills, new_skills]
    if changes:
        audit_record(actor=by, action="agent.routing", obj=agent, changes=changes)
    return row


@transaction.atomic
def skill_create(*, name: str, by: User) -> Skill:
    _require_manager(by)
    name = name.strip()[:60]
    if not name:
        raise DjangoValidationError({"name": _("Give the skill a name.")})
    skill, created = Skill.objects.get_or_create(name=name)
    if created:
        audit_record(actor=by, action="skill.create", obj=skill, changes={"name": name})
    return skill


def agents_with_routing() -> list[tuple[User, AgentRouting | None, int]]:
    """Support staff with their routing row and weighted open load (three queries)."""
    agents = list(support_agents().select_related("team", "routing").prefetch_related("routing__skills"))
    loads = open_loads(a.pk for a in agents)
    return [(a, getattr(a, "routing", None), loads[a.pk]) for a in agents]
