"""Escalation rules (issue 21): at N % of a target a rule reassigns, raises the urgency, notifies the
managers or posts to the team chat, once per ticket — the scan runs twice and acts once."""

import datetime as dt
import zoneinfo

import pytest

from accounts.models import AuditEntry, Notification
from tests.conftest import in_english
from tests.tickets.factories import make_ticket
from tickets import services, tasks
from tickets.escalation import escalation_rule_add, escalation_scan
from tickets.models import (
    ChatDelivery,
    ChatRobot,
    EscalationFiring,
    EscalationRule,
    SlaPolicy,
    Ticket,
    TicketEvent,
)
from tickets.oncall.services import rota_save

pytestmark = pytest.mark.django_db
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
SATURDAY_2AM = dt.datetime(2026, 12, 5, 2, 0, tzinfo=SHANGHAI)


@pytest.fixture
def urgent_policy():
    services.sla_defaults_ensure()
    return SlaPolicy.objects.get(urgency="urgent")  # 30 min / 2 h, round the clock


@pytest.fixture
def rota(support_team, agent, manager, make_user):
    lead = make_user("lead", role="agent", team=support_team.name)
    night = make_user("night", role="agent", team=support_team.name)
    return rota_save(
        team=support_team,
        by=manager,
        members=[night, agent],
        starts_on=dt.date(2026, 11, 30),
        handover_weekday=0,
        handover_time=dt.time(10),
        lead=lead,
    )


@pytest.fixture
def urgent_ticket(requester, urgent_policy):
    # a data request filed in office hours (not assigned by the rota), urgent: 30 minutes to respond
    return make_ticket(
        requester,
        type=Ticket.Type.DATA_SUPPORT,
        urgency=Ticket.Urgency.URGENT,
        now=dt.datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI),
    )


def _rule(policy, manager, **values):
    return escalation_rule_add(policy=policy, by=manager, **values)


def test_reassign_to_on_call_at_half_the_first_response_fires_once(
    urgent_ticket, urgent_policy, rota, manager
):
    _rule(urgent_policy, manager, target="first_response", percent=50, action="assign_oncall")
    created = urgent_ticket.created_at
    assert escalation_scan(now=created + dt.timedelta(minutes=14))["assign_oncall"] == 0  # before the mark
    assert escalation_scan(now=created + dt.timedelta(minutes=15))["assign_oncall"] == 1
    urgent_ticket.refresh_from_db()
    assert urgent_ticket.assignee.username == "night"  # the first week's person
    # the second scan finds the firing and does nothing
    assert escalation_scan(now=created + dt.timedelta(minutes=20))["assign_oncall"] == 0
    assert EscalationFiring.objects.get().outcome == "assigned to night"
    assert TicketEvent.objects.filter(ticket=urgent_ticket, kind="assign").count() == 1


def test_reassign_to_the_team_lead(urgent_ticket, urgent_policy, rota, manager):
    _rule(urgent_policy, manager, target="resolution", percent=80, action="assign_lead")
    escalation_scan(now=urgent_ticket.created_at + dt.timedelta(minutes=96))
    urgent_ticket.refresh_from_db()
    assert urgent_ticket.assignee.username == "lead"
    assert AuditEntry.objects.filter(action="ticket.assign", object_id=str(urgent_ticket.pk)).exists()


def test_raise_urgency_moves_the_deadlines_once(requester, urgent_policy, manager):
    services.sla_defaults_ensure()
    routine = SlaPolicy.objects.get(urgency="routine")
    ticket = make_ticket(
        requester, type=Ticket.Type.DATA_SUPPORT, now=dt.datetime(2026, 12, 3, 9, 0, tzinfo=SHANGHAI)
    )
    _rule(routine, manager, target="first_response", percent=100, action="raise_urgency")
    at = ticket.first_response_due
    escalation_scan(now=at)
    escalation_scan(now=at + dt.timedelta(minutes=1))
    ticket.refresh_from_db()
    assert ticket.urgency == "urgent"
    assert ticket.first_response_due == ticket.created_at + dt.timedelta(minutes=30)
    assert TicketEvent.objects.filter(ticket=ticket, field="urgency").count() == 1


def test_notify_the_managers_once(urgent_ticket, urgent_policy, manager):
    _rule(urgent_policy, manager, target="first_response", percent=80, action="notify_managers")
    for minutes in (24, 25, 60):
        escalation_scan(now=urgent_ticket.created_at + dt.timedelta(minutes=minutes))
    notices = Notification.objects.filter(recipient=manager, kind="ticket.escalated")
    assert notices.count() == 1
    title, _body = notices.get().shown_to(in_english(manager))
    assert "80%" in title and urgent_ticket.key in title and "First response" in title


def test_post_to_the_team_chat_once(urgent_ticket, urgent_policy, manager, support_team, rota):
    ChatRobot.objects.create(team=support_team, name="ops", kind="wecom", webhook_url="http://127.0.0.1:9/x")
    _rule(urgent_policy, manager, target="resolution", percent=100, action="post_chat")
    escalation_scan(now=urgent_ticket.resolution_due)
    escalation_scan(now=urgent_ticket.resolution_due + dt.timedelta(minutes=5))
    [delivery] = ChatDelivery.objects.all()
    assert urgent_ticket.key in delivery.title and delivery.robot.team == support_team


def test_an_answered_ticket_does_not_escalate_on_first_response(urgent_ticket, urgent_policy, agent, manager):
    _rule(urgent_policy, manager, target="first_response", percent=50, action="notify_managers")
    services.comment_add(ticket=urgent_ticket, by=agent, body="Looking at it")
    Ticket.objects.filter(pk=urgent_ticket.pk).update(
        first_response_at=urgent_ticket.created_at + dt.timedelta(minutes=5)
    )
    escalation_scan(now=urgent_ticket.created_at + dt.timedelta(minutes=20))
    assert not EscalationFiring.objects.exists()


def test_a_waiting_ticket_does_not_escalate(urgent_ticket, urgent_policy, manager):
    _rule(urgent_policy, manager, target="resolution", percent=50, action="notify_managers")
    Ticket.objects.filter(pk=urgent_ticket.pk).update(status=Ticket.Status.WAITING_ON_REQUESTER)
    escalation_scan(now=urgent_ticket.created_at + dt.timedelta(hours=3))
    assert not EscalationFiring.objects.exists()


def test_rules_on_office_hours_count_business_time(requester, manager):
    services.sla_defaults_ensure()
    routine = SlaPolicy.objects.get(urgency="routine")  # 4 business hours to respond, Mon–Fri 09–18
    friday = dt.datetime(2026, 12, 4, 17, 0, tzinfo=SHANGHAI)
    ticket = make_ticket(requester, type=Ticket.Type.DATA_SUPPORT, now=friday)
    _rule(routine, manager, target="first_response", percent=50, action="notify_managers")
    # two business hours: 17:00–18:00 on Friday and 09:00–10:00 on Monday
    assert escalation_scan(now=friday + dt.timedelta(hours=40))["notify_managers"] == 0  # Sunday 09:00
    monday = dt.datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
    assert escalation_scan(now=monday - dt.timedelta(minutes=1))["notify_managers"] == 0
    assert escalation_scan(now=monday)["notify_managers"] == 1
    assert EscalationFiring.objects.get().ticket == ticket


def test_the_beat_task_runs_the_rules(urgent_ticket, urgent_policy, manager, monkeypatch):
    from django.utils import timezone

    _rule(urgent_policy, manager, target="first_response", percent=50, action="notify_managers")
    monkeypatch.setattr(timezone, "now", lambda: urgent_ticket.created_at + dt.timedelta(minutes=16))
    first = tasks.sla_scan()
    second = tasks.sla_scan()
    assert first["escalated_notify_managers"] == 1 and "escalated_notify_managers" not in second


def test_a_second_scan_with_many_tickets_acts_on_none(
    requester, urgent_policy, manager, django_assert_max_num_queries
):
    _rule(urgent_policy, manager, target="first_response", percent=50, action="notify_managers")
    start = dt.datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI)
    for _ in range(6):
        make_ticket(requester, type=Ticket.Type.DATA_SUPPORT, urgency=Ticket.Urgency.URGENT, now=start)
    assert escalation_scan(now=start + dt.timedelta(hours=1))["notify_managers"] == 6
    # the candidates are found in one query whatever their number: the second scan reads, writes nothing
    with django_assert_max_num_queries(12):
        assert escalation_scan(now=start + dt.timedelta(hours=2))["notify_managers"] == 0
    assert EscalationFiring.objects.count() == 6


# --- rules: services and pages --------------------------------------------------------------------------


def test_a_duplicate_or_out_of_range_rule_is_refused_naming_the_field(urgent_policy, manager):
    from django.core.exceptions import ValidationError

    _rule(urgent_policy, manager, target="first_response", percent=50, action="notify_managers")
    for values, field in (
        ({"target": "first_response", "percent": 50, "action": "notify_managers"}, "percent"),
        ({"target": "first_response", "percent": 0, "action": "notify_managers"}, "percent"),
        ({"target": "soon", "percent": 50, "action": "notify_managers"}, "target"),
        ({"target": "resolution", "percent": 50, "action": "dance"}, "action"),
    ):
        with pytest.raises(ValidationError) as caught:
            _rule(urgent_policy, manager, **values)
        assert field in caught.value.message_dict
    assert EscalationRule.objects.count() == 1


def test_agents_read_rules_and_managers_edit_them(client_for, urgent_policy, agent, manager):
    url = f"/requests/sla/{urgent_policy.pk}/escalation/"
    page = client_for(agent).get(url)
    assert page.status_code == 200 and b"escalation-form" not in page.content
    assert (
        client_for(agent)
        .post(url, {"target": "resolution", "percent": 50, "action": "notify_managers"})
        .status_code
        == 403
    )
    response = client_for(manager).post(
        url, {"target": "resolution", "percent": 50, "action": "notify_managers"}
    )
    assert response.status_code == 302
    rule = EscalationRule.objects.get()
    assert client_for(agent).post(f"{url}{rule.pk}/delete/").status_code == 403
    assert client_for(manager).post(f"{url}{rule.pk}/delete/").status_code == 302
    assert not EscalationRule.objects.exists()


def test_the_sla_page_lists_each_policys_rules(client_for, urgent_policy, manager):
    _rule(urgent_policy, manager, target="first_response", percent=50, action="assign_oncall")
    page = client_for(in_english(manager)).get("/requests/sla/").content.decode()
    assert 'data-escalation-summary="urgent"' in page
    assert "At 50% of First response: Reassign to the person on call" in page


def test_bad_rule_input_on_the_page_names_the_field(client_for, urgent_policy, manager):
    response = client_for(in_english(manager)).post(
        f"/requests/sla/{urgent_policy.pk}/escalation/",
        {"target": "resolution", "percent": 900, "action": "notify_managers"},
    )
    assert response.status_code == 400 and b'data-error-for="percent"' in response.content
    assert not EscalationRule.objects.exists()


def test_the_chat_post_never_carries_a_customers_contact_data(
    requester, urgent_policy, manager, support_team
):
    # no rota anywhere: the ticket's own team's robots get the post
    ChatRobot.objects.create(
        team=requester.team, name="ops", kind="wecom", webhook_url="http://127.0.0.1:9/x"
    )
    start = dt.datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI)
    ticket = make_ticket(
        requester,
        title="Coupon fails for li.lei@example.com 13812345678",
        type=Ticket.Type.DATA_SUPPORT,
        urgency=Ticket.Urgency.URGENT,
        now=start,
    )
    _rule(urgent_policy, manager, target="first_response", percent=50, action="post_chat")
    escalation_scan(now=start + dt.timedelta(minutes=20))
    delivery = ChatDelivery.objects.get()
    robot = delivery.robot
    from tickets.chat_robots import build_request

    sent = str(build_request(robot, title=delivery.title, text=delivery.text).body)
    for value in ("li.lei@example.com", "13812345678"):
        assert value not in delivery.title + delivery.text and value not in sent
    assert ticket.key in delivery.title
