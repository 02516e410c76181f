"""Support figures against a small hand-built month (times in UTC; the viewer is in Asia/Shanghai, UTC+8)."""

import dataclasses
import datetime as dt

import pytest

from analytics import support_figures as sf
from tests.analytics.factories import at, deflection_make, rating_make, ticket_make
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

NOW = at(20, 0)
H = dt.timedelta(hours=1)
S = Ticket.Status


@pytest.fixture
def month(requester, other_requester, agent, manager):
    """Eight tickets whose figures are worked out by hand in the tests below."""
    t = {}
    # Urgent incident: answered late, resolved in time (team A).
    c = at(2, 2)
    t[1] = ticket_make(
        requester=requester,
        created_at=c,
        urgency="urgent",
        type="incident",
        status=S.RESOLVED,
        first_response_at=c + H,
        first_response_due=c + H / 2,
        resolved_at=c + 3 * H,
        resolution_due=c + 4 * H,
    )
    # Routine data support created at 01:00 Shanghai on 3 Nov: answered in time, resolved late, closed.
    c = at(2, 17)
    t[2] = ticket_make(
        requester=requester,
        created_at=c,
        urgency="routine",
        type="data_support",
        status=S.CLOSED,
        first_response_at=c + 2 * H,
        first_response_due=c + 4 * H,
        resolved_at=c + 10 * H,
        resolution_due=c + 8 * H,
        closed_at=c + 11 * H,
        assignee=None,
    )
    # Routine, waiting on the requester since before its (pre-pause) due time: the pause is no breach.
    c = at(5, 4)
    t[3] = ticket_make(
        requester=requester,
        created_at=c,
        urgency="routine",
        type="system_config",
        status=S.WAITING_ON_REQUESTER,
        first_response_at=c + H,
        first_response_due=c + 4 * H,
        resolution_due=c + 4 * H,
        sla_paused_at=c + 2 * H,
        assignee=agent,
    )
    # Urgent, never answered, long overdue on a running clock: both targets missed.
    c = at(6, 4)
    t[4] = ticket_make(
        requester=requester,
        created_at=c,
        urgency="urgent",
        type="incident",
        status=S.IN_PROGRESS,
        first_response_due=c + H / 2,
        resolution_due=c + 2 * H,
        sla_state="breached",
        assignee=agent,
    )
    # Planned, paused only after its resolution due time had passed: a breach before the pause.
    c = at(7, 4)
    t[5] = ticket_make(
        requester=requester,
        created_at=c,
        urgency="planned",
        type="feature",
        status=S.WAITING_ON_REQUESTER,
        first_response_at=c + H,
        first_response_due=c + 2 * H,
        resolution_due=at(8, 4),
        sla_paused_at=at(9, 4),
    )
    # Urgent incident of the other team: both targets met.
    c = at(3, 4)
    t[6] = ticket_make(
        requester=other_requester,
        created_at=c,
        urgency="urgent",
        type="incident",
        status=S.RESOLVED,
        first_response_at=c + H / 5,
        first_response_due=c + H / 2,
        resolved_at=c + H,
        resolution_due=c + 2 * H,
    )
    # New today (4 hours old), no SLA yet; and an old triaged one from October (outside the range).
    t[7] = ticket_make(requester=requester, created_at=at(19, 20), urgency="routine", status=S.NEW)
    t[8] = ticket_make(
        requester=requester,
        created_at=at(1, 0, month=10),
        urgency="routine",
        status=S.TRIAGED,
        assignee=manager,
    )
    rating_make(ticket=t[1], score=5, created_at=at(2, 8))
    rating_make(ticket=t[2], score=2, created_at=at(3, 8))
    rating_make(ticket=t[6], score=4, created_at=at(3, 8))
    deflection_make(user=requester, created_at=at(4, 1))
    deflection_make(user=requester, created_at=at(4, 2))
    deflection_make(user=other_requester, created_at=at(10, 2))
    return t


def _series(data, key):
    return next(s for s in data["series"] if s["key"] == key)


def test_inflow_and_outflow_per_day_in_the_viewers_time_zone(month, november):
    data = sf.inflow_outflow(november, staff=True)
    opened = dict(zip(data["x"], _series(data, "opened")["values"], strict=True))
    closed = dict(zip(data["x"], _series(data, "closed")["values"], strict=True))
    assert len(data["x"]) == 30
    # t2 was created at 17:00 UTC on 2 Nov = 01:00 on 3 Nov in Shanghai
    assert {d: n for d, n in opened.items() if n} == {
        "2026-11-02": 1,
        "2026-11-03": 2,
        "2026-11-05": 1,
        "2026-11-06": 1,
        "2026-11-07": 1,
        "2026-11-20": 1,
    }
    assert {d: n for d, n in closed.items() if n} == {"2026-11-02": 1, "2026-11-03": 2}


def test_backlog_by_status_and_age(month, november):
    data = sf.backlog(november, staff=True, now=NOW)
    by = {s["key"]: dict(zip(data["x_keys"], s["values"], strict=True)) for s in data["series"]}
    assert by["7_30d"]["waiting_on_requester"] == 2
    assert by["7_30d"]["in_progress"] == 1
    assert by["lt_1d"]["new"] == 1
    assert by["gt_30d"]["triaged"] == 1
    assert data["totals_by_age"] == {"lt_1d": 1, "1_3d": 0, "3_7d": 0, "7_30d": 3, "gt_30d": 1}


def test_sla_attainment_by_urgency_counts_paused_clocks_at_their_pause(month, november):
    data = sf.sla_attainment(november, staff=True, now=NOW)
    first = dict(zip(data["x_keys"], _series(data, "first_response")["values"], strict=True))
    resolution = dict(zip(data["x_keys"], _series(data, "resolution")["values"], strict=True))
    # urgent: t1 late/ok, t4 missed/missed, t6 ok/ok
    assert first["urgent"] == pytest.approx(1 / 3, abs=1e-4)
    assert resolution["urgent"] == pytest.approx(2 / 3, abs=1e-4)
    # routine: t2 ok/late; t3 answered in time, resolution undecided (paused before due); t7 no SLA yet
    assert first["routine"] == 1.0
    assert resolution["routine"] == 0.0
    assert data["counts"]["routine"] == {"fr_met": 2, "fr_missed": 0, "res_met": 0, "res_missed": 1}
    # planned: t5 paused after its due time -> missed
    assert resolution["planned"] == 0.0


def test_sla_attainment_for_one_team(month, november, requester):
    team_a = dataclasses.replace(november, team=requester.team_id)
    data = sf.sla_attainment(team_a, staff=True, now=NOW)
    first = dict(zip(data["x_keys"], _series(data, "first_response")["values"], strict=True))
    resolution = dict(zip(data["x_keys"], _series(data, "resolution")["values"], strict=True))
    assert first["urgent"] == 0.0
    assert resolution["urgent"] == 0.5


def test_median_and_p90_by_type(requester, november):
    # Given five consultations answered after 1, 2, 3, 4 and 10 hours, four of them resolved after 2, 4, 6, 8 hours
    for index, (answer, resolve) in enumerate([(1, 2), (2, 4), (3, 6), (4, 8), (10, None)]):
        c = at(10 + index, 2)
        ticket_make(
            requester=requester,
            created_at=c,
            type="consultation",
            first_response_at=c + answer * H,
            resolved_at=c + resolve * H if resolve else None,
            status=S.RESOLVED if resolve else S.IN_PROGRESS,
        )
    # When
    data = sf.response_times(november, staff=True)
    values = {s["key"]: dict(zip(data["x_keys"], s["values"], strict=True)) for s in data["series"]}
    # Then: percentile_cont interpolates: p90 of 1,2,3,4,10 is 4 + 0.6 * 6 = 7.6; of 2,4,6,8 it is 6 + 0.7 * 2
    assert values["first_response_median"]["consultation"] == 3.0
    assert values["first_response_p90"]["consultation"] == 7.6
    assert values["resolution_median"]["consultation"] == 5.0
    assert values["resolution_p90"]["consultation"] == 7.4
    assert values["first_response_median"]["incident"] is None


def test_workload_per_agent_includes_unassigned(month, november, agent):
    data = sf.workload(november, staff=True)
    totals = {name: sum(s["values"][i] for s in data["series"]) for i, name in enumerate(data["x_keys"])}
    assert totals == {"agent": 2, None: 2, "boss": 1}
    assert data["x_keys"][-1] == "boss"  # most open tickets first


def test_workload_links_open_the_queue_filtered_to_the_agent(month, november):
    data = sf.workload(november, staff=True)
    urgent = _series(data, "urgent")
    link = urgent["links"][data["x_keys"].index("agent")]
    assert link.startswith("/requests/queue/?")
    assert "assignee=agent" in link and "urgency=urgent" in link and "status=open" in link


def test_satisfaction_distribution_and_average(month, november, requester):
    everyone = sf.satisfaction(november, staff=True)
    team_a = sf.satisfaction(dataclasses.replace(november, team=requester.team_id), staff=True)
    assert everyone["series"][0]["values"] == [0, 1, 0, 1, 1]
    assert everyone["average"] == pytest.approx(11 / 3, abs=0.01)
    assert team_a["average"] == 3.5


def test_deflections_per_day_and_for_a_team(month, november, requester):
    everyone = sf.deflections(november, staff=True)
    team_a = sf.deflections(dataclasses.replace(november, team=requester.team_id), staff=True)
    assert everyone["total"] == 3
    assert dict(zip(everyone["x"], everyone["series"][0]["values"], strict=True))["2026-11-04"] == 2
    assert team_a["total"] == 2


def test_kpis(month, november):
    tiles = {tile["key"]: tile["value"] for tile in sf.kpis(november, staff=True)["tiles"]}
    assert tiles == {"opened": 7, "closed": 3, "backlog": 5, "breached": 1, "resolved_in_time": 2}


def test_urgency_filter(month, november):
    urgent = dataclasses.replace(november, urgency="urgent")
    tiles = {tile["key"]: tile["value"] for tile in sf.kpis(urgent, staff=True)["tiles"]}
    assert tiles["opened"] == 3


def test_requester_links_go_to_their_team_list(month, november):
    data = sf.backlog(november, staff=False, now=NOW)
    assert all(link.startswith("/requests/") and "queue" not in link for link in data["series"][0]["links"])
