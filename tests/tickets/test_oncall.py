"""On-call rotas in the database (issue 21): the after-hours assignment of incidents and urgent requests,
the `GET /api/v1/oncall/` contract, big-sale windows switching the targets, and the pages' permissions."""

import datetime as dt
import zoneinfo

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.models import AuditEntry
from tests.conftest import in_english
from tests.tickets.factories import make_ticket
from tests.tickets.test_alert_intake import _alert, _assert_matches_schema, _payload
from tickets import services
from tickets.intake_alerts import parse_alerts
from tickets.models import BigSaleWindow, OnCallOverride, OnCallRota, Ticket, TicketEvent
from tickets.oncall import big_sale
from tickets.oncall.services import override_add, rota_save

pytestmark = pytest.mark.django_db
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
SATURDAY_2AM = dt.datetime(2026, 12, 5, 2, 0, tzinfo=SHANGHAI)
MONDAY_10AM = dt.datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
API = "/api/v1/oncall/"


@pytest.fixture
def second_agent(make_user, support_team):
    return make_user("night", role="agent", team=support_team.name)


@pytest.fixture
def rota(support_team, agent, second_agent, manager):
    """agent on call in the week from Monday 2026-11-30 10:00, night in the week after, and so on."""
    services.sla_defaults_ensure()
    return rota_save(
        team=support_team,
        by=manager,
        members=[agent, second_agent],
        starts_on=dt.date(2026, 11, 30),
        handover_weekday=0,
        handover_time=dt.time(10),
    )


# --- assignment outside business hours -----------------------------------------------------------------


def test_an_alert_at_two_on_saturday_lands_on_the_person_on_call(settings, rota, agent):
    settings.ALERT_INTAKE_TEAM = rota.team.name
    [alert] = parse_alerts(_payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    services.alerts_receive(alerts=[alert], now=SATURDAY_2AM)
    ticket = Ticket.objects.get()
    assert ticket.assignee == agent
    assert ticket.first_response_due == SATURDAY_2AM + dt.timedelta(minutes=30)
    event = TicketEvent.objects.get(ticket=ticket, kind=TicketEvent.Kind.ASSIGN, note="on-call")
    assert event.actor is None and event.assignee == agent


def test_an_untouched_alert_assigned_on_call_still_resolves_itself(settings, rota, agent):
    settings.ALERT_INTAKE_TEAM = rota.team.name
    [firing] = parse_alerts(_payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    services.alerts_receive(alerts=[firing], now=SATURDAY_2AM)
    [resolved] = parse_alerts(_payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2", status="resolved")))
    [outcome] = services.alerts_receive(alerts=[resolved])
    assert outcome["action"] == "resolved"


def test_an_urgent_request_outside_office_hours_goes_to_the_override(rota, requester, manager, make_user):
    cover = make_user("cover", role="agent", team=rota.team.name)
    override_add(
        rota=rota,
        by=manager,
        user=cover,
        starts_at=SATURDAY_2AM - dt.timedelta(hours=3),
        ends_at=SATURDAY_2AM + dt.timedelta(hours=3),
    )
    ticket = make_ticket(
        requester, type=Ticket.Type.DATA_SUPPORT, urgency=Ticket.Urgency.URGENT, now=SATURDAY_2AM
    )
    assert ticket.assignee == cover


def test_in_office_hours_the_rota_does_not_assign(rota, requester):
    ticket = make_ticket(requester, urgency=Ticket.Urgency.URGENT, now=MONDAY_10AM)
    assert not TicketEvent.objects.filter(ticket=ticket, note="on-call").exists()


def test_routine_work_outside_hours_is_not_the_on_call_persons(rota, requester):
    ticket = make_ticket(requester, type=Ticket.Type.DATA_SUPPORT, now=SATURDAY_2AM)
    assert not TicketEvent.objects.filter(ticket=ticket, note="on-call").exists()


def test_during_a_big_sale_window_the_rota_applies_in_office_hours(rota, requester, manager, second_agent):
    big_sale.big_sale_save(
        by=manager,
        name="618",
        starts_at=MONDAY_10AM - dt.timedelta(days=1),
        ends_at=MONDAY_10AM + dt.timedelta(days=1),
        urgent_first_response_minutes=10,
        urgent_resolution_minutes=60,
        incident_first_response_minutes=5,
        incident_resolution_minutes=30,
    )
    ticket = make_ticket(
        requester, type=Ticket.Type.DATA_SUPPORT, urgency=Ticket.Urgency.URGENT, now=MONDAY_10AM
    )
    # Monday 2026-12-07 10:00 is the handover to the second week: night's turn
    assert ticket.assignee == second_agent


# --- big-sale targets ----------------------------------------------------------------------------------


@pytest.fixture
def window_618(manager):
    return big_sale.big_sale_save(
        by=manager,
        name="618",
        starts_at=dt.datetime(2027, 6, 18, 0, 0, tzinfo=SHANGHAI),
        ends_at=dt.datetime(2027, 6, 19, 0, 0, tzinfo=SHANGHAI),
        urgent_first_response_minutes=10,
        urgent_resolution_minutes=60,
        incident_first_response_minutes=5,
        incident_resolution_minutes=30,
    )


def test_inside_the_window_urgent_requests_run_round_the_clock_on_its_targets(window_618, requester):
    night = dt.datetime(2027, 6, 18, 23, 0, tzinfo=SHANGHAI)  # a Friday night
    ticket = make_ticket(requester, type=Ticket.Type.DATA_SUPPORT, urgency=Ticket.Urgency.URGENT, now=night)
    assert ticket.first_response_due == night + dt.timedelta(minutes=10)
    assert ticket.resolution_due == night + dt.timedelta(minutes=60)


def test_inside_the_window_incidents_get_the_incident_targets_whatever_their_urgency(window_618, requester):
    night = dt.datetime(2027, 6, 18, 23, 0, tzinfo=SHANGHAI)
    ticket = make_ticket(requester, type=Ticket.Type.INCIDENT, urgency=Ticket.Urgency.ROUTINE, now=night)
    assert ticket.first_response_due == night + dt.timedelta(minutes=5)
    assert ticket.resolution_due == night + dt.timedelta(minutes=30)


def test_after_the_window_the_policy_targets_return(window_618, requester):
    after = dt.datetime(2027, 6, 19, 0, 0, tzinfo=SHANGHAI)
    ticket = make_ticket(requester, type=Ticket.Type.DATA_SUPPORT, urgency=Ticket.Urgency.URGENT, now=after)
    assert ticket.first_response_due == after + dt.timedelta(minutes=30)  # the urgent policy, round the clock


def test_routine_work_in_the_window_keeps_its_policy(window_618, requester):
    night = dt.datetime(2027, 6, 18, 23, 0, tzinfo=SHANGHAI)
    ticket = make_ticket(requester, type=Ticket.Type.DATA_SUPPORT, now=night)
    assert ticket.first_response_due > night + dt.timedelta(hours=4)  # office hours: not before Monday


def test_a_window_that_ends_before_it_starts_is_refused_naming_the_field(manager):
    with pytest.raises(Exception) as caught:
        big_sale.big_sale_save(
            by=manager,
            name="双11",
            starts_at=dt.datetime(2027, 11, 12, tzinfo=SHANGHAI),
            ends_at=dt.datetime(2027, 11, 11, tzinfo=SHANGHAI),
            urgent_first_response_minutes=10,
            urgent_resolution_minutes=60,
            incident_first_response_minutes=0,
            incident_resolution_minutes=30,
        )
    assert set(caught.value.message_dict) == {"ends_at", "incident_first_response_minutes"}
    assert not BigSaleWindow.objects.exists()


def test_an_agent_cannot_declare_a_window(agent):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        big_sale.big_sale_save(by=agent, name="618")


# --- the API -------------------------------------------------------------------------------------------


def test_api_answers_the_contract(api_for, rota, agent):
    at = dt.datetime(2026, 12, 3, 2, 0, tzinfo=SHANGHAI)
    response = api_for(agent).get(API, {"team": rota.team_id, "at": at.isoformat()})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"team", "user", "until"}
    assert body["team"] == rota.team_id
    assert body["user"] == {"id": agent.pk, "username": agent.username}
    assert dt.datetime.fromisoformat(body["until"]) == dt.datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
    _assert_matches_schema(body, API, "get", "200")


def test_api_until_takes_an_override_into_account(api_for, rota, agent, second_agent, manager):
    start = dt.datetime(2026, 12, 3, 20, 0, tzinfo=SHANGHAI)
    override_add(
        rota=rota, by=manager, user=second_agent, starts_at=start, ends_at=start + dt.timedelta(hours=12)
    )
    at = dt.datetime(2026, 12, 3, 2, 0, tzinfo=SHANGHAI)
    body = api_for(agent).get(API, {"team": rota.team_id, "at": at.isoformat()}).json()
    assert dt.datetime.fromisoformat(body["until"]) == start
    during = (
        api_for(agent)
        .get(API, {"team": rota.team_id, "at": (start + dt.timedelta(hours=1)).isoformat()})
        .json()
    )
    assert during["user"]["username"] == second_agent.username
    assert dt.datetime.fromisoformat(during["until"]) == start + dt.timedelta(hours=12)


def test_api_nobody_on_call_for_a_team_without_rota(api_for, agent, other_requester):
    body = api_for(agent).get(API, {"team": other_requester.team_id}).json()
    assert body == {"team": other_requester.team_id, "user": None, "until": None}
    _assert_matches_schema(body, API, "get", "200")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "team"),
        ({"team": "x"}, "team"),
        ({"team": 999999}, "team"),
        ({"at": "yesterday"}, "at"),
        ({"at": "2026-12-03T02:00:00"}, "at"),
    ],
)
def test_api_bad_input_names_the_field(api_for, rota, agent, params, field):
    query = {"team": rota.team_id, **params} if field == "at" else params
    response = api_for(agent).get(API, query)
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_api_refuses_requesters_and_anonymous(api_for, rota, requester):
    assert api_for(requester).get(API, {"team": rota.team_id}).status_code == 403
    assert api_for(None).get(API, {"team": rota.team_id}).status_code in (401, 403)


def test_api_schema_documents_the_operation():
    operation = SchemaGenerator().get_schema(request=None, public=True)["paths"][API]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"team", "at"}
    assert {"200", "400", "403"} <= set(operation["responses"])


def test_api_query_count_is_bounded(api_for, rota, agent, manager, django_assert_max_num_queries):
    for hours in range(5):
        start = SATURDAY_2AM + dt.timedelta(days=hours)
        override_add(
            rota=rota, by=manager, user=agent, starts_at=start, ends_at=start + dt.timedelta(hours=2)
        )
    client = api_for(agent)
    with django_assert_max_num_queries(10):  # session/user, team exists, rota, members, overrides, user
        client.get(API, {"team": rota.team_id})


# --- services ------------------------------------------------------------------------------------------


def test_rota_save_is_audited_and_refuses_non_staff(rota, manager, requester, support_team):
    assert AuditEntry.objects.filter(action="tickets.oncall_rota_save", object_id=str(rota.pk)).exists()
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        rota_save(
            team=support_team,
            by=manager,
            members=[requester],
            starts_on=dt.date(2026, 12, 1),
            handover_weekday=0,
            handover_time=dt.time(10),
        )
    assert "members" in caught.value.message_dict
    assert list(OnCallRota.objects.get(pk=rota.pk).members.values_list("position", flat=True)) == [0, 1]


def test_an_override_must_end_after_it_starts(rota, manager, agent):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        override_add(rota=rota, by=manager, user=agent, starts_at=SATURDAY_2AM, ends_at=SATURDAY_2AM)
    assert "ends_at" in caught.value.message_dict
    assert not OnCallOverride.objects.exists()


# --- pages: allow and deny ------------------------------------------------------------------------------


def test_agents_read_the_team_page_with_who_is_on_call(client_for, rota, agent):
    response = client_for(in_english(agent)).get(f"/requests/oncall/teams/{rota.team_id}/")
    assert response.status_code == 200
    assert b'id="oncall-now"' in response.content and b"rota-form" not in response.content


def test_managers_save_a_rota_on_the_page(client_for, rota, manager, agent, second_agent):
    response = client_for(manager).post(
        f"/requests/oncall/teams/{rota.team_id}/",
        {
            "form": "rota",
            "members": f"{second_agent.username}\n{agent.username}",
            "starts_on": "2026-12-01",
            "handover_weekday": "2",
            "handover_time": "09:30",
        },
    )
    assert response.status_code == 302
    rota.refresh_from_db()
    assert [m.user_id for m in rota.members.all()] == [second_agent.pk, agent.pk]
    assert rota.handover_weekday == 2 and rota.handover_time == dt.time(9, 30)


def test_an_unknown_member_is_named_and_nothing_changes(client_for, rota, manager, agent):
    response = client_for(in_english(manager)).post(
        f"/requests/oncall/teams/{rota.team_id}/",
        {
            "form": "rota",
            "members": "ghost",
            "starts_on": "2026-12-01",
            "handover_weekday": "0",
            "handover_time": "10:00",
        },
    )
    assert response.status_code == 400 and b"ghost" in response.content
    assert rota.members.count() == 2


def test_managers_add_and_remove_an_override(client_for, rota, manager, agent):
    client = client_for(manager)
    response = client.post(
        f"/requests/oncall/teams/{rota.team_id}/",
        {
            "form": "override",
            "user": agent.pk,
            "starts_at": "2026-12-24T18:00",
            "ends_at": "2026-12-26T09:00",
        },
    )
    assert response.status_code == 302
    override = OnCallOverride.objects.get()
    assert override.starts_at == dt.datetime(2026, 12, 24, 18, tzinfo=SHANGHAI)
    assert (
        client.post(f"/requests/oncall/teams/{rota.team_id}/overrides/{override.pk}/delete/").status_code
        == 302
    )
    assert not OnCallOverride.objects.exists()


def test_agents_cannot_change_the_rota(client_for, rota, agent):
    response = client_for(agent).post(
        f"/requests/oncall/teams/{rota.team_id}/", {"form": "rota", "members": "x"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/requests/oncall/",
        "/requests/oncall/teams/{team}/",
        "/requests/oncall/teams/{team}/robots/",
        "/requests/sla/{policy}/escalation/",
    ],
)
def test_requesters_are_refused_every_page(client_for, rota, requester, path):
    from tickets.models import SlaPolicy

    url = path.format(team=rota.team_id, policy=SlaPolicy.objects.first().pk)
    assert client_for(requester).get(url).status_code == 403


def test_the_index_lists_rotas_in_bounded_queries(
    client_for, rota, agent, make_user, manager, django_assert_max_num_queries
):
    from accounts.models import Team

    for i in range(4):
        team = Team.objects.create(name=f"Team {i}")
        person = make_user(f"a{i}", role="agent", team=team.name)
        rota_save(
            team=team,
            by=manager,
            members=[person],
            starts_on=dt.date(2026, 1, 1),
            handover_weekday=0,
            handover_time=dt.time(9),
        )
    client = client_for(agent)
    with django_assert_max_num_queries(14):
        response = client.get("/requests/oncall/")
    assert response.status_code == 200 and response.content.count(b"data-oncall-now") == 5


def test_big_sale_pages_are_for_managers_only(client_for, manager, agent):
    assert client_for(agent).get("/requests/oncall/big-sale/").status_code == 403
    client = client_for(manager)
    assert client.get("/requests/oncall/big-sale/").status_code == 200
    response = client.post(
        "/requests/oncall/big-sale/",
        {
            "name": "618",
            "starts_at": "2027-06-18T00:00",
            "ends_at": "2027-06-19T00:00",
            "urgent_first_response_minutes": 10,
            "urgent_resolution_minutes": 60,
            "incident_first_response_minutes": 5,
            "incident_resolution_minutes": 30,
        },
    )
    assert response.status_code == 302
    window = BigSaleWindow.objects.get()
    assert window.starts_at == dt.datetime(2027, 6, 18, tzinfo=SHANGHAI)
    assert client_for(agent).post(f"/requests/oncall/big-sale/{window.pk}/delete/").status_code == 403
    assert client.post(f"/requests/oncall/big-sale/{window.pk}/delete/").status_code == 302
    assert not BigSaleWindow.objects.exists()


def test_the_queue_and_dashboard_show_the_running_window(client_for, manager, agent):
    from django.utils import timezone

    now = timezone.now()
    big_sale.big_sale_save(
        by=manager,
        name="双11",
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=1),
        urgent_first_response_minutes=10,
        urgent_resolution_minutes=60,
        incident_first_response_minutes=5,
        incident_resolution_minutes=30,
    )
    client = client_for(manager)
    for url in ("/requests/queue/", "/dashboards/support/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert 'data-big-sale="双11"' in response.content.decode(), url


def test_no_banner_outside_a_window(client_for, agent):
    assert b"big-sale-banner" not in client_for(agent).get("/requests/queue/").content


def test_agents_cannot_remove_an_override(client_for, rota, manager, agent):
    override = override_add(
        rota=rota,
        by=manager,
        user=agent,
        starts_at=SATURDAY_2AM,
        ends_at=SATURDAY_2AM + dt.timedelta(hours=1),
    )
    url = f"/requests/oncall/teams/{rota.team_id}/overrides/{override.pk}/delete/"
    assert client_for(agent).post(url).status_code == 403
    assert OnCallOverride.objects.filter(pk=override.pk).exists()


def test_a_team_without_rota_shows_an_empty_state_and_the_editor_to_managers(
    client_for, agent, manager, other_requester
):
    url = f"/requests/oncall/teams/{other_requester.team_id}/"
    page = client_for(in_english(agent)).get(url)
    assert page.status_code == 200 and b"No rota yet" in page.content
    assert b'id="rota-form"' in client_for(manager).get(url).content
    assert client_for(agent).get("/requests/oncall/teams/999999/").status_code == 404
