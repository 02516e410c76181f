"""Hostile input through filters, search boxes, rule fields and CSV exports: no 500, no leak, no damage."""

import pytest
from django.db import connection

from config.csv_export import safe_cell, stream_csv
from tests.tickets.factories import make_ticket

PAYLOADS = [
    "' OR '1'='1",
    "'; DROP TABLE tickets_ticket; --",
    "1) OR (1=1",
    "\\'; SELECT pg_sleep(0); --",
    "%' UNION SELECT username, password FROM accounts_user --",
]


@pytest.fixture
def brand_ticket(other_requester):
    return make_ticket(other_requester, title="Brand only")


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOADS)
def test_ticket_filters_and_search(api_for, client_for, requester, agent, brand_ticket, payload):
    for param in ["q", "status", "type", "urgency", "assignee", "team", "sla", "campaign"]:
        response = api_for(requester).get("/api/v1/tickets/", {param: payload})
        assert response.status_code in (200, 400), (param, response.status_code)
        if response.status_code == 200:
            assert response.json()["count"] == 0, param
        page = client_for(agent).get("/requests/queue/", {param: payload})
        assert page.status_code in (200, 400), (param, page.status_code)


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOADS)
def test_search_boxes(api_for, client_for, requester, agent, payload):
    assert api_for(requester).get("/api/v1/kb/articles/", {"q": payload}).status_code == 200
    assert client_for(requester).get("/kb/", {"q": payload}).status_code == 200
    assert client_for(agent).get("/customers/", {"q": payload}).status_code == 200
    assert api_for(agent).get("/api/v1/customers/", {"tag": payload}).status_code in (200, 400, 404)
    assert client_for(requester).get("/campaigns/", {"status": payload, "q": payload}).status_code in (
        200,
        400,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOADS)
def test_rule_fields(api_for, agent, payload):
    api = api_for(agent)
    assert (
        api.post(
            "/api/v1/tags/", {"slug": "inj", "name": "Injection", "kind": "rule"}, format="json"
        ).status_code
        == 201
    )
    hostile_attr = {"attr": payload, "op": "=", "value": "x"}
    hostile_value = {"attr": "city", "op": "=", "value": payload}
    hostile_event = {"event": payload, "agg": "count", "op": ">=", "value": 1}
    for definition, ok in [(hostile_attr, False), (hostile_value, True), (hostile_event, False)]:
        response = api.post("/api/v1/tags/inj/preview/", {"definition": definition}, format="json")
        assert response.status_code == (200 if ok else 400), (definition, response.content)
        if ok:
            assert response.json()["matched"] == 0
        else:
            assert response.json()["errors"][0]["path"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tickets_ticket")
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_csv_cells_that_spreadsheets_would_run_are_neutralised(cell):
    assert safe_cell(cell) == "'" + cell
    text = "".join(stream_csv(["name"], [[cell]]))
    assert "\n'" in text or "\"'" in text


def test_csv_numbers_and_plain_text_pass_unchanged():
    assert safe_cell(-5) == -5
    assert safe_cell("Shanghai") == "Shanghai"
