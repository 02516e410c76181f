"""Date filters of the queue (used by the dashboards' drill-down links)."""

import datetime as dt

import pytest

from tests.tickets.factories import force_status, make_ticket
from tickets.models import Ticket


@pytest.mark.django_db
def test_created_and_resolved_day_filters(api_for, agent, requester):
    old = make_ticket(requester, title="old one")
    Ticket.objects.filter(pk=old.pk).update(created_at=dt.datetime(2026, 10, 1, 3, tzinfo=dt.UTC))
    new = make_ticket(requester, title="new one")
    force_status(new, Ticket.Status.RESOLVED, resolved_at=dt.datetime(2026, 11, 3, 2, tzinfo=dt.UTC))
    api = api_for(agent)

    created = api.get(
        "/api/v1/tickets/", {"status": "all", "created_from": "2026-10-01", "created_to": "2026-10-01"}
    )
    assert [row["key"] for row in created.json()["results"]] == [old.key]

    resolved = api.get(
        "/api/v1/tickets/", {"status": "all", "resolved_from": "2026-11-03", "resolved_to": "2026-11-03"}
    )
    assert [row["key"] for row in resolved.json()["results"]] == [new.key]


@pytest.mark.django_db
def test_a_bad_date_is_a_400_naming_it_in_the_api(api_for, agent, requester):
    # the schema says `format: date`: the API refuses what is not one (issue 16), rather than ignore it
    make_ticket(requester)
    response = api_for(agent).get("/api/v1/tickets/", {"created_from": "not-a-date"})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["created_from"]


@pytest.mark.django_db
def test_a_bad_date_is_ignored_by_the_queue_page(client_for, agent, requester):
    # a hand-edited link keeps the page working
    ticket = make_ticket(requester)
    response = client_for(agent).get("/requests/queue/", {"created_from": "not-a-date"})
    assert response.status_code == 200
    assert ticket.key.encode() in response.content
