"""Alert intake (issue 21): Alertmanager webhook v4 and the generic format open, comment on and resolve
incident tickets by fingerprint; the bearer token guards it; bad payloads name the field and write nothing."""

import copy
import datetime as dt
import zoneinfo
from typing import Any

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.models import AuditEntry, User
from tests.tickets.factories import make_ticket
from tickets import services
from tickets.intake_alerts import parse_alerts
from tickets.models import AlertLink, Comment, Ticket
from tickets.services.alerts import SYSTEM_USERNAME

pytestmark = pytest.mark.django_db
URL = "/api/v1/intake/alerts/"
PATH = "/api/v1/intake/alerts/"
TOKEN = "s3cret-alert-token"
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def _alert(name: str, fingerprint: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager 0.27 sends it."""
    return {
        "status": status,
        "labels": {
            "alertname": name,
            "env": "prod",
            "instance": "checkout-1:9100",
            "job": "checkout",
            "severity": "critical",
            **labels,
        },
        "annotations": {
            "summary": f"{name} on checkout-1",
            "description": "5xx ratio is 4.1 % over the last 5 minutes.\nCheck the payment gateway.",
            "runbook_url": "https://runbooks.example.com/checkout/errors",
        },
        "startsAt": "2026-12-05T18:00:05.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-05T18:20:05.123Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28http_5xx%5B5m%5D%29&g0.tab=1",
        "fingerprint": fingerprint,
    }


def _payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4, grouped by alertname."""
    first = alerts[0]
    return {
        "receiver": "martech-hub",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": first["labels"]["alertname"]},
        "commonLabels": {"alertname": first["labels"]["alertname"], "env": "prod"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="' + first["labels"]["alertname"] + '"}',
        "truncatedAlerts": 0,
    }


def _openapi_to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_openapi_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        out = (
            {"anyOf": [out, {"type": "null"}]}
            if "type" not in out
            else {**out, "type": [out["type"], "null"]}
        )
    return out


def _assert_matches_schema(body: Any, path: str, method: str, code: str) -> None:
    """The answer is what the OpenAPI schema says for this operation and status."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    response = schema["paths"][path][method]["responses"][code]
    if "$ref" in response:  # a shared error answer (config.openapi)
        response = schema["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    root = {
        **_openapi_to_json_schema(response["content"]["application/json"]["schema"]),
        "components": _openapi_to_json_schema(schema["components"]),
    }
    jsonschema.validate(body, root, cls=jsonschema.Draft202012Validator)


@pytest.fixture(autouse=True)
def _intake_on(settings, support_team):
    settings.ALERT_INTAKE_TOKEN = TOKEN
    settings.ALERT_INTAKE_TEAM = support_team.name


@pytest.fixture
def post(api_for, agent, manager):  # agent and manager exist: notifications have people to go to
    def _post(body: Any, token: str | None = TOKEN):
        client = api_for(None)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
        return client.post(URL, body, format="json", **headers)

    return _post


def _sent(post, body: Any) -> list[dict[str, str]]:
    response = post(body)
    assert response.status_code == 202, response.content
    _assert_matches_schema(response.json(), PATH, "post", "202")
    return response.json()["tickets"]


# --- fire, repeat, resolve ------------------------------------------------------------------------------


def test_a_firing_alert_opens_an_urgent_incident_for_the_intake_team(post, support_team):
    [outcome] = _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    ticket = Ticket.objects.get()
    assert outcome == {"key": ticket.key, "action": "opened"}
    assert (ticket.type, ticket.urgency, ticket.channel, ticket.status) == (
        "incident",
        "urgent",
        "alert",
        "new",
    )
    assert ticket.team == support_team
    assert ticket.title == "CheckoutErrorRate: CheckoutErrorRate on checkout-1"
    system = ticket.requester
    assert system.username == SYSTEM_USERNAME
    assert not system.is_active and not system.has_usable_password()
    assert AlertLink.objects.get().fingerprint == "c5a7b1e7d3f0a1b2"
    # audited as every ticket creation is
    audit = AuditEntry.objects.get(action="ticket.create", object_id=str(ticket.pk))
    assert audit.actor == system and audit.changes == {"key": ticket.key, "channel": "alert"}


def test_the_description_has_labels_annotations_and_the_runbook_link(post):
    _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    text = Ticket.objects.get().description
    assert (
        "[https://runbooks.example.com/checkout/errors](https://runbooks.example.com/checkout/errors)" in text
    )
    assert "### Labels" in text and "### Annotations" in text
    assert "| severity | critical |" in text
    assert r"| instance | checkout\-1:9100 |" in text
    assert "Check the payment gateway." in text
    assert "c5a7b1e7d3f0a1b2" in text


def test_markdown_and_script_links_in_an_alert_stay_text(post):
    alert = _alert("Evil", "e1", team="[click](javascript:alert(1))")
    alert["annotations"]["runbook_url"] = "javascript:alert(1)"
    _sent(post, _payload(alert))
    text = Ticket.objects.get().description
    assert "](javascript" not in text
    assert r"\[click\]\(javascript:alert\(1\)\)" in text


def test_an_incident_runs_round_the_clock(support_team, agent):
    """02:00 on a Saturday: the urgent incident's clocks run at once (30 min / 2 h), not from Monday."""
    saturday = dt.datetime(2026, 12, 5, 2, 0, tzinfo=SHANGHAI)
    [alert] = parse_alerts(_payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    services.alerts_receive(alerts=[alert], now=saturday)
    ticket = Ticket.objects.get()
    assert ticket.first_response_due == saturday + dt.timedelta(minutes=30)
    assert ticket.resolution_due == saturday + dt.timedelta(hours=2)


def test_the_same_fingerprint_while_open_comments_instead_of_opening(post):
    body = _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2"))
    [opened] = _sent(post, body)
    [again] = _sent(post, body)
    assert again == {"key": opened["key"], "action": "commented"}
    ticket = Ticket.objects.get()
    [comment] = Comment.objects.filter(ticket=ticket)
    assert comment.author.username == SYSTEM_USERNAME and "still firing" in comment.body


def test_resolved_on_an_untouched_ticket_comments_and_resolves_it(post):
    [opened] = _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    [done] = _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2", status="resolved")))
    assert done == {"key": opened["key"], "action": "resolved"}
    ticket = Ticket.objects.get()
    assert ticket.status == "resolved" and ticket.resolved_at is not None
    assert "is resolved" in Comment.objects.get(ticket=ticket).body
    audit = AuditEntry.objects.get(action="ticket.transition", object_id=str(ticket.pk))
    assert audit.actor is None and audit.changes == {"status": ["new", "resolved"]}


@pytest.mark.parametrize("touch", ["comment", "assign", "triage"])
def test_resolved_after_a_person_touched_the_ticket_only_comments(post, agent, touch):
    [opened] = _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    ticket = Ticket.objects.get()
    if touch == "comment":
        services.comment_add(ticket=ticket, by=agent, body="Looking at the gateway.", internal=True)
    elif touch == "assign":
        services.ticket_assign(ticket=ticket, by=agent, assignee=agent)
    else:
        services.ticket_transition(ticket=ticket, to="triaged", by=agent, feasibility="feasible")
    [after] = _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2", status="resolved")))
    assert after == {"key": opened["key"], "action": "commented"}
    ticket.refresh_from_db()
    assert ticket.status != "resolved" and ticket.resolved_at is None
    assert Comment.objects.filter(ticket=ticket, author__username=SYSTEM_USERNAME).count() == 1


def test_firing_again_after_the_ticket_is_resolved_opens_a_new_one(post):
    _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2", status="resolved")))
    [again] = _sent(post, _payload(_alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2")))
    assert again["action"] == "opened"
    assert Ticket.objects.count() == 2


def test_a_resolved_alert_without_an_open_ticket_changes_nothing(post):
    assert _sent(post, _payload(_alert("CheckoutErrorRate", "0000000000000001", status="resolved"))) == []
    assert not Ticket.objects.exists() and not Comment.objects.exists()


def test_grouped_alerts_are_each_handled(post):
    first = _sent(
        post,
        _payload(
            _alert("DiskFull", "aaaaaaaaaaaaaaaa", instance="db-1:9100"),
            _alert("DiskFull", "bbbbbbbbbbbbbbbb", instance="db-2:9100"),
        ),
    )
    assert [o["action"] for o in first] == ["opened", "opened"]
    assert first[0]["key"] != first[1]["key"]
    second = _sent(
        post,
        _payload(
            _alert("DiskFull", "aaaaaaaaaaaaaaaa", instance="db-1:9100"),
            _alert("DiskFull", "bbbbbbbbbbbbbbbb", status="resolved", instance="db-2:9100"),
            _alert("DiskFull", "cccccccccccccccc", instance="db-3:9100"),
        ),
    )
    assert second == [
        {"key": first[0]["key"], "action": "commented"},
        {"key": first[1]["key"], "action": "resolved"},
        {"key": second[2]["key"], "action": "opened"},
    ]
    assert Ticket.objects.count() == 3


# --- the generic format ---------------------------------------------------------------------------------


def test_generic_alerts_open_and_resolve_by_the_fingerprint_of_their_labels(post):
    labels = {"alertname": "PaymentSuccessLow", "service": "pay"}
    [opened] = _sent(post, {"status": "firing", "title": "Payment success 98.7 %", "labels": labels})
    assert opened["action"] == "opened"
    ticket = Ticket.objects.get()
    assert ticket.title == "Payment success 98.7 %"
    # the key is Alertmanager's own fingerprint of the labels: the same alert from Alertmanager matches
    assert AlertLink.objects.get().fingerprint == services.labels_fingerprint(labels)
    alert = _alert("PaymentSuccessLow", "x")
    alert["labels"] = labels
    del alert["fingerprint"]
    assert _sent(post, _payload(alert)) == [{"key": ticket.key, "action": "commented"}]
    [done] = _sent(post, {"status": "resolved", "title": "Payment success back", "labels": labels})
    assert done == {"key": ticket.key, "action": "resolved"}


def test_generic_alert_with_its_own_fingerprint(post):
    body = {
        "fingerprint": "uptime:landing",
        "status": "firing",
        "title": "Landing page down",
        "description": "503",
    }
    assert _sent(post, body)[0]["action"] == "opened"
    assert _sent(post, body)[0]["action"] == "commented"
    assert "503" in Ticket.objects.get().description


def test_the_fingerprint_is_alertmanagers():
    # prometheus/common model.LabelsToSignature's own test values
    assert services.labels_fingerprint({}) == "cbf29ce484222325"
    fingerprint = services.labels_fingerprint({"name": "garland, briggs", "fear": "love is not enough"})
    assert int(fingerprint, 16) == 5799056148416392346


# --- bad payloads ---------------------------------------------------------------------------------------


def _bad(status: str = "firing") -> dict[str, Any]:
    return _payload(_alert("A", "aaaaaaaaaaaaaaaa"), _alert("B", "bbbbbbbbbbbbbbbb", status=status))


def _with(body: dict[str, Any], change) -> dict[str, Any]:  # noqa: ANN001
    body = copy.deepcopy(body)
    change(body)
    return body


@pytest.mark.parametrize(
    "body, field",
    [
        (_bad(status="burning"), "alerts[1].status"),
        (_with(_bad(), lambda b: b.update(version="3")), "version"),
        (_with(_bad(), lambda b: b.update(alerts=[])), "alerts"),
        (_with(_bad(), lambda b: b["alerts"][0].pop("labels")), "alerts[0].labels"),
        (_with(_bad(), lambda b: b["alerts"][1]["labels"].update(env={"x": 1})), "alerts[1].labels.env"),
        (_with(_bad(), lambda b: b["alerts"][0].update(fingerprint="a b")), "alerts[0].fingerprint"),
        (_with(_bad(), lambda b: b["alerts"][0].update(startsAt="yesterday")), "alerts[0].startsAt"),
        ({"status": "firing"}, "title"),
        ({"status": "down", "title": "x", "fingerprint": "f"}, "status"),
        ({"status": "firing", "title": "No key"}, "fingerprint"),
    ],
)
def test_bad_payloads_name_the_field_and_create_nothing(post, body, field):
    response = post(body)
    assert response.status_code == 400, response.content
    assert field in [error.get("field") for error in response.json()["errors"]]
    assert not Ticket.objects.exists() and not AlertLink.objects.exists()
    assert not User.objects.filter(username=SYSTEM_USERNAME).exists()


@pytest.mark.parametrize("body", [[{"status": "firing"}], "firing", 42])
def test_a_body_that_is_no_object_is_refused(post, body):
    response = post(body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Ticket.objects.exists()


def test_a_team_that_does_not_exist_answers_503(post, settings):
    settings.ALERT_INTAKE_TEAM = "No such team"
    response = post(_payload(_alert("A", "aaaaaaaaaaaaaaaa")))
    assert response.status_code == 503
    assert "ALERT_INTAKE_TEAM" in response.json()["detail"]
    assert not Ticket.objects.exists()


# --- the token ------------------------------------------------------------------------------------------


def test_the_right_token_is_allowed(post):
    assert post(_payload(_alert("A", "aaaaaaaaaaaaaaaa"))).status_code == 202


@pytest.mark.parametrize("token", [None, "", "wrong-token", TOKEN + "x"])
def test_a_missing_or_wrong_token_is_refused_with_401(post, token):
    response = post(_payload(_alert("A", "aaaaaaaaaaaaaaaa")), token=token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Ticket.objects.exists()


def test_another_scheme_is_refused(api_for):
    response = api_for(None).post(
        URL, _payload(_alert("A", "aaaaaaaaaaaaaaaa")), format="json", HTTP_AUTHORIZATION=f"Token {TOKEN}"
    )
    assert response.status_code == 401
    assert not Ticket.objects.exists()


def test_a_signed_in_person_without_the_token_is_refused(api_for, agent):
    response = api_for(agent).post(URL, _payload(_alert("A", "aaaaaaaaaaaaaaaa")), format="json")
    assert response.status_code == 401
    assert not Ticket.objects.exists()


def test_without_a_configured_token_the_intake_answers_503(post, settings):
    settings.ALERT_INTAKE_TOKEN = ""
    response = post(_payload(_alert("A", "aaaaaaaaaaaaaaaa")), token="anything")
    assert response.status_code == 503
    assert "ALERT_INTAKE_TOKEN" in response.json()["detail"]
    assert not Ticket.objects.exists()


# --- the schema -----------------------------------------------------------------------------------------


def test_the_schema_documents_the_answers(post):
    operation = SchemaGenerator().get_schema(request=None, public=True)["paths"][PATH]["post"]
    assert {"202", "400", "401", "413", "429", "503"} <= set(operation["responses"])
    assert "403" not in operation["responses"]
    response = post(_payload(_alert("A", "aaaaaaaaaaaaaaaa")), token="wrong")
    _assert_matches_schema(response.json(), PATH, "post", "401")
    _assert_matches_schema(post([1]).json(), PATH, "post", "400")


def test_the_incident_is_visible_to_agents_not_to_other_teams(post, api_for, agent, requester):
    [opened] = _sent(post, _payload(_alert("A", "aaaaaaaaaaaaaaaa")))
    assert api_for(agent).get(f"/api/v1/tickets/{opened['key']}/").status_code == 200
    assert api_for(requester).get(f"/api/v1/tickets/{opened['key']}/").status_code == 404


def test_factories_still_file_for_the_requesters_team(requester):
    assert make_ticket(requester).team_id == requester.team_id


def test_the_ticket_page_shows_the_runbook_as_a_link_and_no_script_link(post, client_for, agent):
    alert = _alert("CheckoutErrorRate", "c5a7b1e7d3f0a1b2", team="[x](javascript:alert(1))")
    [opened] = _sent(post, _payload(alert))
    page = client_for(agent).get(f"/requests/{opened['key']}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="https://runbooks.example.com/checkout/errors"' in html
    assert 'href="javascript' not in html
    assert "[x](javascript:alert(1))" in html  # the label's value, shown as text
