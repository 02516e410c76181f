"""Routing: round-robin, least loaded and by skill, with away agents and capacity (tickets.routing)."""

import random

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Notification
from tests.tickets.factories import make_ticket
from tickets import routing, services
from tickets.models import AgentRouting, RoutingMiss, Skill, TeamRouting, Ticket, TypeSkill

S = Ticket.Status
WEIGHT = {"urgent": 3, "routine": 2, "planned": 1}


@pytest.fixture
def agents(make_user, support_team):
    return [make_user(f"ag{i}", role="agent", team=support_team.name) for i in range(4)]


@pytest.fixture
def load_team(requester):
    return TeamRouting.objects.create(team_id=requester.team_id, mode=TeamRouting.Mode.LOAD)


def _counter():
    n = [5000]

    def nxt() -> int:
        n[0] += 1
        return n[0]

    return nxt


def quick_ticket(requester, number: int, urgency: str, type_: str = "data_support") -> Ticket:
    """A bare open ticket row (the service's SLA and notifications are not what these tests measure)."""
    return Ticket.objects.create(
        key=f"RT-{number}",
        number=number,
        title="t",
        type=type_,
        urgency=urgency,
        requester=requester,
        team_id=requester.team_id,
    )


def route(ticket: Ticket):
    chosen = routing.agent_for_ticket(ticket)
    if chosen is not None:
        Ticket.objects.filter(pk=ticket.pk).update(assignee=chosen)
    return chosen


def reference_choice(assigned, agents, capacity, urgency):
    """Brute force: every agent's load recomputed from the full list of assignments, then the rule."""
    loads = {a: sum(WEIGHT[u] for who, u, still_open in assigned if who == a and still_open) for a in agents}
    fits = [a for a in agents if capacity.get(a) is None or loads[a] + WEIGHT[urgency] <= capacity[a]]
    return min(fits, key=lambda a: (loads[a], a)) if fits else None


# --- the rule -------------------------------------------------------------------------------------------------


def test_choose_round_robin_wraps_and_skips_full_agents():
    c = [routing.Candidate(1, 0, None, frozenset()), routing.Candidate(2, 5, 5, frozenset())]
    assert routing.choose("round_robin", c, weight=2, required=set(), last_user_id=None) == 1
    # 2 is next but full: wraps to 1
    assert routing.choose("round_robin", c, weight=2, required=set(), last_user_id=1) == 1


def test_choose_skill_needs_every_required_skill_then_least_load():
    c = [
        routing.Candidate(1, 0, None, frozenset({10})),
        routing.Candidate(2, 4, None, frozenset({10, 11})),
        routing.Candidate(3, 2, None, frozenset({10, 11, 12})),
    ]
    assert routing.choose("skill", c, weight=1, required={10, 11}, last_user_id=None) == 3
    assert routing.choose("skill", c, weight=1, required={13}, last_user_id=None) is None


# --- fairness -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_load_routing_is_fair_over_1000_tickets_and_matches_the_reference(requester, agents, load_team):
    # given four agents, one with a capacity, and 1,000 requests of random urgency, some closed as we go
    rng = random.Random(21)
    ids = [a.pk for a in agents]
    AgentRouting.objects.create(user=agents[3], capacity=40)
    capacity = {agents[3].pk: 40}
    assigned = []  # (agent id, urgency, open?)
    tickets = []
    mismatches = 0
    for n in range(1000):
        urgency = rng.choice(["urgent", "routine", "routine", "planned"])
        ticket = quick_ticket(requester, 10_000 + n, urgency)
        expected = reference_choice(assigned, ids, capacity, urgency)
        chosen = route(ticket)
        mismatches += (chosen.pk if chosen else None) != expected
        assigned.append((chosen.pk if chosen else None, urgency, True))
        tickets.append(ticket)
        if rng.random() < 0.3:  # some work gets done
            index = rng.randrange(len(tickets))
            if assigned[index][2]:
                Ticket.objects.filter(pk=tickets[index].pk).update(status=S.RESOLVED)
                assigned[index] = (*assigned[index][:2], False)
    # then every choice is the reference's, and the uncapped agents' loads are within one urgent request
    assert mismatches == 0
    loads = routing.open_loads(ids)
    uncapped = [loads[pk] for pk in ids[:3]]
    assert max(uncapped) - min(uncapped) <= WEIGHT["urgent"]
    assert loads[agents[3].pk] <= 40
    counts = [Ticket.objects.filter(assignee_id=pk).count() for pk in ids[:3]]
    assert max(counts) - min(counts) < 0.1 * 1000 / 3


@pytest.mark.django_db
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["urgent", "routine", "planned"]), st.booleans()), min_size=1, max_size=25
    ),
    caps=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=12)), min_size=3, max_size=3),
)
def test_load_routing_matches_a_brute_force_simulation(requester, agents, load_team, steps, caps):
    # given random capacities and a random stream of requests, each maybe closing the oldest open one
    ids = [a.pk for a in agents[:3]]
    AgentRouting.objects.filter(user_id=agents[3].pk).delete()
    agents[3].is_available = False
    agents[3].save(update_fields=["is_available"])
    numbers = _counter()
    with transaction.atomic():
        for pk, cap in zip(ids, caps, strict=True):
            AgentRouting.objects.update_or_create(user_id=pk, defaults={"capacity": cap, "away": False})
        assigned, tickets = [], []
        for urgency, close in steps:
            ticket = quick_ticket(requester, numbers(), urgency)
            expected = reference_choice(assigned, ids, dict(zip(ids, caps, strict=True)), urgency)
            chosen = route(ticket)
            # then the database routing picks exactly what the reference picks
            assert (chosen.pk if chosen else None) == expected
            assigned.append((expected, urgency, True))
            tickets.append(ticket)
            if close:
                first_open = next(i for i, row in enumerate(assigned) if row[2])
                Ticket.objects.filter(pk=tickets[first_open].pk).update(status=S.CLOSED)
                assigned[first_open] = (*assigned[first_open][:2], False)
        transaction.set_rollback(True)


# --- skills, away, capacity, round-robin -----------------------------------------------------------------------


@pytest.mark.django_db
def test_skill_routing_only_picks_agents_with_every_required_skill(requester, agents):
    # given a team that routes by skill and a type that needs SQL and CRM
    TeamRouting.objects.create(team_id=requester.team_id, mode=TeamRouting.Mode.SKILL)
    sql, crm = Skill.objects.create(name="SQL"), Skill.objects.create(name="CRM")
    TypeSkill.objects.create(team_id=requester.team_id, type="data_support", skill=sql)
    TypeSkill.objects.create(team_id=requester.team_id, type="data_support", skill=crm)
    AgentRouting.objects.create(user=agents[0]).skills.set([sql])
    AgentRouting.objects.create(user=agents[1]).skills.set([sql, crm])
    AgentRouting.objects.create(user=agents[2]).skills.set([sql, crm])
    numbers = _counter()
    # when six such requests arrive
    chosen = [route(quick_ticket(requester, numbers(), "routine")).username for _ in range(6)]
    # then only the two with both skills get them, evenly
    assert sorted(set(chosen)) == ["ag1", "ag2"]
    assert chosen.count("ag1") == chosen.count("ag2") == 3
    # and a type that needs nothing goes to anyone (the least loaded)
    assert route(quick_ticket(requester, numbers(), "routine", type_="feature")).username in ("ag0", "ag3")


@pytest.mark.django_db
def test_request_type_skills_are_required_too(requester, agents):
    from tickets.routing_tables import RequestType

    TeamRouting.objects.create(team_id=requester.team_id, mode=TeamRouting.Mode.SKILL)
    wechat = Skill.objects.create(name="WeChat")
    AgentRouting.objects.create(user=agents[2]).skills.set([wechat])
    coupon = RequestType.objects.create(team_id=requester.team_id, name="Coupon setup")
    coupon.skills.set([wechat])
    ticket = quick_ticket(requester, 7001, "urgent")
    ticket.request_type = coupon
    ticket.save(update_fields=["request_type"])
    assert route(ticket) == agents[2]


@pytest.mark.django_db
def test_away_agents_never_receive_and_come_back(requester, agents, load_team):
    # given all but one agent away
    for agent in agents[1:]:
        routing.agent_away_set(agent=agent, by=agent, away=True)
    numbers = _counter()
    # then everything goes to the one who is in
    assert {route(quick_ticket(requester, numbers(), "planned")).username for _ in range(5)} == {"ag0"}
    # when one comes back, they (least loaded) get the next
    routing.agent_away_set(agent=agents[2], by=agents[2], away=False)
    assert route(quick_ticket(requester, numbers(), "planned")) == agents[2]


@pytest.mark.django_db
def test_an_agent_cannot_mark_someone_else_away(agents):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        routing.agent_away_set(agent=agents[1], by=agents[0], away=True)
    assert not AgentRouting.objects.filter(user=agents[1], away=True).exists()


@pytest.mark.django_db
def test_nobody_with_room_leaves_the_ticket_unassigned_and_tells_the_lead_once(
    requester, agents, load_team, manager
):
    # given every agent at capacity 2 (one routine request each)
    for agent in agents:
        AgentRouting.objects.create(user=agent, capacity=2)
    AgentRouting.objects.update_or_create(user=manager, defaults={"away": True})
    load_team.lead = agents[0]
    load_team.save()
    numbers = _counter()
    for _ in agents:
        assert route(quick_ticket(requester, numbers(), "routine")) is not None
    # when one more arrives, routed twice (created, then triaged)
    extra = quick_ticket(requester, numbers(), "planned")
    assert route(extra) is None
    assert route(extra) is None
    # then it stays unassigned and the lead was told once
    extra.refresh_from_db()
    assert extra.assignee_id is None
    assert RoutingMiss.objects.filter(ticket=extra).count() == 1
    assert Notification.objects.filter(recipient=agents[0], kind="ticket.unrouted").count() == 1


@pytest.mark.django_db
def test_triage_uses_the_team_routing(requester, agents, load_team, agent):
    # given ag0 already holding an urgent request
    busy = make_ticket(requester, urgency="urgent")
    services.ticket_assign(ticket=busy, by=agent, assignee=agents[0])
    for other in (agent,):
        AgentRouting.objects.update_or_create(user=other, defaults={"away": True})
    # when a new request is triaged without an assignee
    ticket = make_ticket(requester)
    services.ticket_transition(ticket=ticket, to=S.TRIAGED, by=agent, feasibility="feasible")
    ticket.refresh_from_db()
    # then the least loaded (not ag0, not the away agent) takes it
    assert ticket.assignee is not None
    assert ticket.assignee.username in ("ag1", "ag2", "ag3")


@pytest.mark.django_db
def test_assign_when_filed(requester, agents):
    TeamRouting.objects.create(
        team_id=requester.team_id, mode=TeamRouting.Mode.ROUND_ROBIN, assign_on_create=True
    )
    first, second = make_ticket(requester), make_ticket(requester)
    assert first.assignee is not None and second.assignee is not None
    assert first.assignee != second.assignee
    assert Notification.objects.filter(recipient=first.assignee, kind="ticket.assigned").exists()


@pytest.mark.django_db
def test_without_assign_when_filed_a_new_ticket_waits_for_triage(requester, agents):
    assert make_ticket(requester).assignee is None


@pytest.mark.django_db
def test_weights_live_in_one_place():
    assert routing.URGENCY_WEIGHTS == {"urgent": 3, "routine": 2, "planned": 1}
    assert routing.ticket_weight("urgent") == 3


@pytest.mark.django_db
def test_without_a_ticket_it_is_plain_round_robin(agents):
    # the old call, kept for callers without a ticket: takes turns over the support-wide cursor
    chosen = [services.round_robin_agent().username for _ in range(5)]
    assert chosen == ["ag0", "ag1", "ag2", "ag3", "ag0"]


@pytest.mark.django_db
def test_routing_on_filing_is_audited(requester, agents):
    from accounts.models import AuditEntry

    TeamRouting.objects.create(team_id=requester.team_id, assign_on_create=True)
    ticket = make_ticket(requester)
    entry = AuditEntry.objects.get(action="ticket.assign", object_id=str(ticket.pk))
    assert entry.changes["by"] == "routing" and entry.changes["assignee"][1] == ticket.assignee.username
