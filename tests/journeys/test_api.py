"""The journeys and destinations API: the Contract's shapes (checked against the OpenAPI schema), allow and
deny per endpoint, bad input named by path, personal values never shown, query counts."""

import json
import warnings
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from journeys import engine
from journeys.models import Destination, Journey
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db
JOURNEYS = "/api/v1/journeys/"
DESTINATIONS = "/api/v1/destinations/"
PLANTED_EMAIL = "li.na.planted@example.com"
PLANTED_PHONE = "13987654321"


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


def _assert_matches_schema(body: Any, path: str, method: str = "get", code: str = "200") -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    response = schema["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]
    root = {**_openapi_to_json_schema(response), "components": _openapi_to_json_schema(schema["components"])}
    jsonschema.validate(body, root, cls=jsonschema.Draft202012Validator)


@pytest.fixture
def vip(db):
    return f.manual_tag("vip")


def _body(**overrides):
    body = {
        "name": "VIP thank-you",
        "trigger": {"kind": "tag_entered", "tag": "vip"},
        "entry": {"reentry": "never", "percent": 10, "holdout_percent": 20},
        "steps": [{"wait": {"days": 1}}, {"exit": True}],
        "goal": {"event": "order", "within_days": 14},
    }
    return body | overrides


def _create(api_for, user, **overrides) -> int:
    response = api_for(user).post(JOURNEYS, _body(**overrides), format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


# --- create --------------------------------------------------------------------------------------------


def test_create_answers_id_and_version(api_for, marketer, vip):
    response = api_for(marketer).post(JOURNEYS, _body(), format="json")
    assert response.status_code == 201
    journey = Journey.objects.get()
    assert response.json() == {"id": journey.pk, "version": 1}
    assert (journey.status, journey.owner, journey.team_id) == ("draft", marketer, marketer.team_id)
    _assert_matches_schema(response.json(), "/api/v1/journeys/", "post", "201")


def test_create_is_refused_to_anonymous(api_for, vip):
    assert api_for(None).post(JOURNEYS, _body(), format="json").status_code == 401


def test_a_bad_definition_is_400_naming_the_path(api_for, marketer, vip):
    steps = [
        {"wait": {"days": 1}},
        {"branch": {"if": {"attr": "city", "op": "=", "value": "X"}, "then": [{"action": "fax"}]}},
    ]
    response = api_for(marketer).post(JOURNEYS, _body(steps=steps), format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "steps[1].branch.then[0].action"
    assert not Journey.objects.exists()


@pytest.mark.parametrize(
    "body", [{"name": "x"}, {"name": "x", "trigger": "tag"}, {"name": "", "trigger": {}}, []]
)
def test_malformed_bodies_are_400_never_500(api_for, marketer, body):
    assert api_for(marketer).post(JOURNEYS, body, format="json").status_code == 400


def test_a_personal_literal_in_a_rule_needs_view_pii(api_for, marketer, vip):
    steps = [{"branch": {"if": {"attr": "email", "op": "=", "value": PLANTED_EMAIL}, "then": [], "else": []}}]
    response = api_for(marketer).post(JOURNEYS, _body(steps=steps), format="json")
    assert response.status_code == 403
    assert PLANTED_EMAIL not in response.content.decode()


# --- read, scoped -------------------------------------------------------------------------------------


def test_the_list_and_detail_are_scoped_to_the_team(api_for, marketer, other_requester, agent, vip):
    pk = _create(api_for, marketer)
    assert [j["id"] for j in api_for(marketer).get(JOURNEYS).json()["results"]] == [pk]
    assert api_for(agent).get(f"{JOURNEYS}{pk}/").status_code == 200
    assert api_for(other_requester).get(JOURNEYS).json()["results"] == []
    assert api_for(other_requester).get(f"{JOURNEYS}{pk}/").status_code == 404


# --- activate and pause ---------------------------------------------------------------------------------


def test_the_team_activates_up_to_10_percent(api_for, marketer, vip):
    pk = _create(api_for, marketer)
    response = api_for(marketer).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["percent"]) == ("active", 10)


def test_more_than_10_percent_needs_a_manager(api_for, marketer, manager, vip):
    pk = _create(api_for, marketer)
    assert (
        api_for(marketer).post(f"{JOURNEYS}{pk}/activate/", {"percent": 100}, format="json").status_code
        == 403
    )
    assert Journey.objects.get(pk=pk).status == "draft"
    response = api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {"percent": 100}, format="json")
    assert response.status_code == 200 and response.json()["percent"] == 100
    assert Journey.objects.get(pk=pk).approved_by == manager


def test_another_team_cannot_activate_or_pause(api_for, marketer, other_requester, vip):
    pk = _create(api_for, marketer)
    assert api_for(other_requester).post(f"{JOURNEYS}{pk}/activate/", {}, format="json").status_code == 404
    api_for(marketer).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    assert api_for(other_requester).post(f"{JOURNEYS}{pk}/pause/").status_code == 404


def test_pause_then_pausing_again_is_409(api_for, marketer, vip):
    pk = _create(api_for, marketer)
    api_for(marketer).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    assert api_for(marketer).post(f"{JOURNEYS}{pk}/pause/").json()["status"] == "paused"
    assert api_for(marketer).post(f"{JOURNEYS}{pk}/pause/").status_code == 409


def test_activate_with_a_bad_percent_is_400(api_for, marketer, vip):
    pk = _create(api_for, marketer)
    assert (
        api_for(marketer).post(f"{JOURNEYS}{pk}/activate/", {"percent": 150}, format="json").status_code
        == 400
    )


# --- stats and enrolments ---------------------------------------------------------------------------------


def _walked(api_for, marketer, manager, vip):
    pk = _create(api_for, marketer, entry={"reentry": "never", "percent": 100, "holdout_percent": 30})
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    planted = f.customer(external_id="PLANTED", email=PLANTED_EMAIL, phone=PLANTED_PHONE, name="李娜植入")
    f.enter(vip, [planted, *f.customers(19)])
    f.admit()
    engine.run_due()
    return pk


def test_stats_have_the_contract_shape(api_for, marketer, manager, vip):
    pk = _walked(api_for, marketer, manager, vip)
    body = api_for(marketer).get(f"{JOURNEYS}{pk}/stats/").json()
    _assert_matches_schema(body, "/api/v1/journeys/{id}/stats/")
    assert set(body) == {"entered", "active", "converted", "holdout", "lift", "lift_ci", "steps"}
    assert body["entered"] + body["holdout"]["entered"] == 20 and body["holdout"]["entered"] > 0
    assert body["active"] == body["entered"]  # all waiting a day
    assert [s["id"] for s in body["steps"]] == ["0", "1"]
    assert body["steps"][0] == {"id": "0", "kind": "wait", "passed": 0, "acted": 0, "skipped": 0, "failed": 0}


def test_lift_and_its_interval_come_from_the_ab_engine(manager):
    from campaigns.abtest import VariantCounts, compare
    from journeys.selectors import _lift

    lift, ci = _lift((200, 60), (100, 15))
    expected = compare(VariantCounts("holdout", 100, 15), VariantCounts("journey", 200, 60), test="z")
    assert lift == pytest.approx(0.15) and ci == expected["lift_ci"] and ci[0] < 0.15 < ci[1]
    assert _lift((10, 1), (0, 0)) == (None, None)


def test_stats_and_enrolments_are_scoped(api_for, marketer, manager, other_requester, vip):
    pk = _walked(api_for, marketer, manager, vip)
    assert api_for(other_requester).get(f"{JOURNEYS}{pk}/stats/").status_code == 404
    assert api_for(other_requester).get(f"{JOURNEYS}{pk}/enrolments/").status_code == 404
    assert api_for(None).get(f"{JOURNEYS}{pk}/stats/").status_code == 401


def test_one_customers_enrolments_with_their_runs(api_for, marketer, manager, vip):
    pk = _walked(api_for, marketer, manager, vip)
    body = api_for(marketer).get(f"{JOURNEYS}{pk}/enrolments/?customer=PLANTED").json()
    _assert_matches_schema(body, "/api/v1/journeys/{id}/enrolments/")
    [enrolment] = body["results"]
    assert enrolment["customer"] == {"external_id": "PLANTED"}
    assert enrolment["state"] == "active"
    assert api_for(marketer).get(f"{JOURNEYS}{pk}/enrolments/?customer=NOBODY").json()["results"] == []


def test_personal_values_never_appear_in_journey_output(api_for, marketer, manager, vip):
    # given a customer with a planted e-mail and phone walking a journey; a viewer without view_pii
    pk = _walked(api_for, marketer, manager, vip)
    client = api_for(marketer)
    for url in (
        f"{JOURNEYS}{pk}/stats/",
        f"{JOURNEYS}{pk}/enrolments/",
        f"{JOURNEYS}{pk}/enrolments/?customer=PLANTED",
        f"{JOURNEYS}{pk}/",
        JOURNEYS,
    ):
        text = client.get(url).content.decode()
        assert PLANTED_EMAIL not in text and PLANTED_PHONE not in text and "李娜植入" not in text, url
    # (managers hold view_pii, and the output is the same: it never carries personal values at all)
    assert PLANTED_EMAIL not in api_for(manager).get(f"{JOURNEYS}{pk}/enrolments/").content.decode()


def test_enrolments_and_stats_take_a_fixed_number_of_queries(
    api_for, marketer, manager, vip, django_assert_max_num_queries
):
    pk = _walked(api_for, marketer, manager, vip)
    client = api_for(marketer)
    client.get(f"{JOURNEYS}{pk}/enrolments/")  # warm the permission cache
    # (1) the journey in reach, (2) count, (3) the page of enrolments with customers and versions, (4) their runs
    with django_assert_max_num_queries(4):
        assert client.get(f"{JOURNEYS}{pk}/enrolments/").status_code == 200
    # (1) the journey, (2) enrolment counts, (3) step counts
    with django_assert_max_num_queries(3):
        assert client.get(f"{JOURNEYS}{pk}/stats/").status_code == 200
    # (1) count, (2) the page of journeys with their versions, owners and teams
    with django_assert_max_num_queries(2):
        assert client.get(JOURNEYS).status_code == 200


# --- destinations ---------------------------------------------------------------------------------------


def test_support_staff_create_destinations_and_the_secret_is_never_shown(api_for, agent):
    body = {
        "name": "coupons",
        "kind": "webhook",
        "url": "https://coupons.example.com/hook",
        "secret": "top-secret-value",
        "batch_size": 50,
        "purpose": "marketing_sms",
        "customer_facing": True,
    }
    response = api_for(agent).post(DESTINATIONS, body, format="json")
    assert response.status_code == 201
    destination = Destination.objects.get()
    assert response.json() == {"id": destination.pk}
    assert (destination.secret, destination.batch_size, destination.purpose) == (
        "top-secret-value",
        50,
        "marketing_sms",
    )
    listing = api_for(agent).get(DESTINATIONS)
    assert "top-secret-value" not in listing.content.decode()
    assert listing.json()["results"][0]["secret_set"] is True
    from accounts.models import AuditEntry

    assert "top-secret-value" not in json.dumps(
        AuditEntry.objects.get(action="journey.destination_create").changes
    )


def test_defaults_batch_size_1_and_not_customer_facing(api_for, agent):
    api_for(agent).post(
        DESTINATIONS, {"name": "crm", "kind": "webhook", "url": "https://crm.example.com/x"}, format="json"
    )
    destination = Destination.objects.get()
    assert (destination.batch_size, destination.customer_facing, destination.purpose) == (1, False, "")


def test_requesters_may_not_create_or_list_destinations(api_for, marketer):
    body = {"name": "x", "kind": "webhook", "url": "https://x.example.com/"}
    assert api_for(marketer).post(DESTINATIONS, body, format="json").status_code == 403
    assert api_for(marketer).get(DESTINATIONS).status_code == 403
    assert not Destination.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "webhook"}, "url"),
        ({"name": "x", "kind": "file"}, "folder"),
        ({"name": "x", "kind": "ftp"}, "kind"),
        (
            {"name": "x", "kind": "webhook", "url": "https://x.example.com/", "purpose": "analytics"},
            "purpose",
        ),
        ({"name": "x", "kind": "webhook", "url": "https://x.example.com/", "batch_size": 0}, "batch_size"),
    ],
)
def test_bad_destinations_are_400_naming_the_field(api_for, agent, body, field):
    response = api_for(agent).post(DESTINATIONS, body, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in {e.get("path") or e.get("field") for e in errors}


# --- schema ---------------------------------------------------------------------------------------------


def test_the_schema_stays_valid_and_documents_journeys(tmp_path):
    out = tmp_path / "schema.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    text = out.read_text()
    for path in (
        "/api/v1/journeys/",
        "/api/v1/journeys/{id}/activate/",
        "/api/v1/journeys/{id}/versions/",
        "/api/v1/journeys/{id}/stats/",
        "/api/v1/destinations/",
    ):
        assert path in text


def test_create_activate_and_pause_are_audited(api_for, marketer, manager, vip):
    from accounts.models import AuditEntry

    pk = _create(api_for, marketer)
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {"percent": 50}, format="json")
    api_for(manager).post(f"{JOURNEYS}{pk}/pause/")
    entries = AuditEntry.objects.filter(object_type="journeys.journey", object_id=str(pk)).order_by("pk")
    assert [(e.action, e.actor_id) for e in entries] == [
        ("journey.create", marketer.pk),
        ("journey.activate", manager.pk),
        ("journey.pause", manager.pk),
    ]
    assert entries[1].changes["percent"] == [0, 50]


def test_the_destination_list_takes_a_fixed_number_of_queries(api_for, agent, django_assert_max_num_queries):
    for n in range(3):
        f.webhook(agent, f"https://h{n}.example.com/")
    client = api_for(agent)
    client.get(DESTINATIONS)
    # (1) count, (2) the page
    with django_assert_max_num_queries(2):
        assert len(client.get(DESTINATIONS).json()["results"]) == 3


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("get", "{pk}/"),
        ("post", "{pk}/versions/"),
        ("post", "{pk}/activate/"),
        ("post", "{pk}/pause/"),
        ("get", "{pk}/stats/"),
        ("get", "{pk}/enrolments/"),
    ],
)
def test_every_journey_endpoint_refuses_anonymous(api_for, marketer, vip, method, suffix):
    pk = _create(api_for, marketer)
    response = getattr(api_for(None), method)(JOURNEYS + suffix.format(pk=pk))
    assert response.status_code == 401


def test_destinations_refuse_anonymous(api_for):
    assert api_for(None).get(DESTINATIONS).status_code == 401
    assert api_for(None).post(DESTINATIONS, {}, format="json").status_code == 401
