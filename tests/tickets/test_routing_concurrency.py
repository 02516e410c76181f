"""Routing under concurrency: two requests routed at once never both fill an agent's last slot."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from tests.tickets.factories import make_ticket
from tickets import routing
from tickets.models import AgentRouting, TeamRouting, Ticket


def _someone_waits_on_a_lock(timeout: float = 10.0) -> bool:
    """True as soon as another session of this database waits on a row lock (polled, bounded)."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is a snapshot per transaction
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
    return False


@pytest.fixture
def one_slot(requester, make_user, support_team):
    """One available agent with room for exactly one routine request; the team routes by load."""
    solo = make_user("solo", role="agent", team=support_team.name)
    AgentRouting.objects.create(user=solo, capacity=2)
    TeamRouting.objects.create(team_id=requester.team_id, mode=TeamRouting.Mode.LOAD, assign_on_create=False)
    return solo


@pytest.mark.django_db(transaction=True)
def test_the_second_routing_waits_for_the_first_and_sees_the_agent_full(requester, one_slot):
    # given two new routine requests
    first, second = make_ticket(requester), make_ticket(requester)
    first_chose = threading.Event()
    results: dict[str, object] = {}

    def route_first() -> None:
        try:
            with transaction.atomic():
                chosen = routing.agent_for_ticket(first)
                first_chose.set()
                # the other routing must now be blocked on our row lock, not choosing
                results["second_waited"] = _someone_waits_on_a_lock()
                Ticket.objects.filter(pk=first.pk).update(assignee=chosen)
                results["first"] = chosen
        finally:
            connection.close()

    def route_second() -> None:
        try:
            first_chose.wait(10)
            with transaction.atomic():
                chosen = routing.agent_for_ticket(second)
                if chosen is not None:
                    Ticket.objects.filter(pk=second.pk).update(assignee=chosen)
                results["second"] = chosen
        finally:
            connection.close()

    # when both are routed at once
    threads = [threading.Thread(target=route_first), threading.Thread(target=route_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # then the second waited, and found the only agent full: it stays unassigned
    assert results["second_waited"] is True
    assert results["first"] == one_slot
    assert results["second"] is None
    assert routing.open_loads([one_slot.pk])[one_slot.pk] == 2


@pytest.mark.django_db(transaction=True)
def test_two_requests_filed_at_once_never_push_an_agent_past_capacity(requester, one_slot):
    # given a team that assigns when a request is filed
    TeamRouting.objects.filter(team_id=requester.team_id).update(assign_on_create=True)
    start = threading.Barrier(2)
    keys: list[str] = []

    def file_one() -> None:
        try:
            start.wait(10)
            keys.append(make_ticket(requester).key)
        finally:
            connection.close()

    # when two requests are filed at the same moment
    threads = [threading.Thread(target=file_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # then exactly one went to the agent and the other waits unassigned
    assert len(keys) == 2
    assignees = sorted(str(Ticket.objects.get(key=k).assignee_id) for k in keys)
    assert assignees == sorted([str(one_slot.pk), "None"])
    assert routing.open_loads([one_slot.pk])[one_slot.pk] <= 2
