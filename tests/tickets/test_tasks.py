"""The SLA beat task: at-risk and breached are stored and notified once per state."""

import datetime as dt

import pytest

from accounts.models import Notification
from tests.tickets.factories import force_status, make_ticket
from tickets import services, tasks
from tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.django_db
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def urgent(requester, agent, manager):
    ticket = make_ticket(requester, urgency="urgent")
    services.ticket_assign(ticket=ticket, by=manager, assignee=agent)
    Notification.objects.all().delete()
    ticket.refresh_from_db()
    return ticket


def sla_notifications() -> list[tuple[str, str]]:
    return sorted(
        Notification.objects.filter(verb__startswith="ticket.sla_").values_list("recipient__username", "verb")
    )


def test_at_risk_notifies_assignee_and_managers_once(urgent):
    at = urgent.first_response_risk_at + SECOND
    assert services.sla_scan(now=at) == {"at_risk": 1, "breached": 0}
    services.sla_scan(now=at + SECOND)
    urgent.refresh_from_db()
    assert urgent.sla_state == "at_risk"
    assert sla_notifications() == [("agent", "ticket.sla_at_risk"), ("boss", "ticket.sla_at_risk")]


def test_breach_notifies_once(urgent):
    services.sla_scan(now=urgent.first_response_risk_at + SECOND)
    at = urgent.first_response_due + SECOND
    assert services.sla_scan(now=at)["breached"] == 1
    assert services.sla_scan(now=at + dt.timedelta(minutes=5))["breached"] == 0
    urgent.refresh_from_db()
    assert urgent.sla_state == "breached"
    assert [v for _u, v in sla_notifications()].count("ticket.sla_breached") == 2
    assert TicketEvent.objects.filter(ticket=urgent, kind="sla", new="breached").count() == 1


def test_nothing_before_the_80_percent_mark(urgent):
    assert services.sla_scan(now=urgent.first_response_risk_at - SECOND) == {"at_risk": 0, "breached": 0}
    assert sla_notifications() == []


def test_paused_tickets_are_left_alone(urgent, agent):
    force_status(urgent, Ticket.Status.IN_PROGRESS)
    services.ticket_transition(ticket=urgent, to="waiting_on_requester", by=agent, note="Which page?")
    urgent.refresh_from_db()
    assert services.sla_scan(now=urgent.resolution_due + dt.timedelta(hours=1))["breached"] == 0


def test_beat_task_runs_the_scan(urgent):
    assert tasks.sla_scan() == {"at_risk": 0, "breached": 0}
