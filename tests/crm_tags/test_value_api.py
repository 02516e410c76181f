"""The customer-value API (issue 19): GET /api/v1/customers/value-model/, the customer's `rfm` and `value`
fields (schema-valid; masking unaffected), and the manager-only lead score rules."""

import datetime
import json
from typing import Any

import jsonschema
import pytest
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from crm_tags.models import CustomerValue, LeadScoreRule, ValueModelFit
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db
MODEL = "/api/v1/customers/value-model/"
RULES = "/api/v1/customers/lead-score-rules/"
PARAMS = {
    "bg_nbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "gamma_gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
    "log_likelihood": -9582.4,
    "order_event_type": "order",
}


@pytest.fixture
def fit(db) -> ValueModelFit:
    return ValueModelFit.objects.create(
        as_of=datetime.date(1997, 9, 30), time_unit="weeks", params=PARAMS, customers=2357
    )


@pytest.fixture
def valued(fit):
    """A customer with a known e-mail and phone and a stored value."""
    customer = factories.customer(external_id="VAL1", email="zhang.wei@example.com", phone="13812345678")
    CustomerValue.objects.create(
        customer=customer,
        recency_score=1,
        frequency_score=4,
        monetary_score=5,
        segment="at_risk",
        expected_purchases_90d=0.4,
        p_alive=0.31,
        expected_spend=52.5,
        clv_12m=612.25,
        lead_score=17.5,
        computed_at=timezone.now(),
        as_of=fit.as_of,
    )
    return customer


def _openapi_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema's null type."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _assert_matches_schema(body: Any, path: str) -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    response = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    root = {**_openapi_to_json_schema(response), "components": _openapi_to_json_schema(schema["components"])}
    jsonschema.validate(body, root, cls=jsonschema.Draft202012Validator)


# --- the model -------------------------------------------------------------------------------------


def test_the_value_model_has_the_contract_shape(api_for, agent, fit):
    body = api_for(agent).get(MODEL).json()

    assert body == {
        "as_of": "1997-09-30",
        "time_unit": "weeks",
        "bg_nbd": PARAMS["bg_nbd"],
        "gamma_gamma": PARAMS["gamma_gamma"],
        "customers": 2357,
        "fitted_at": body["fitted_at"],
    }
    assert body["fitted_at"]
    _assert_matches_schema(body, MODEL)


def test_the_newest_fit_is_shown(api_for, agent, fit):
    ValueModelFit.objects.create(
        as_of=datetime.date(1998, 1, 1), time_unit="days", params=PARAMS, customers=9
    )
    assert api_for(agent).get(MODEL).json()["as_of"] == "1998-01-01"


def test_before_any_fit_the_model_is_404_saying_why(api_for, agent):
    response = api_for(agent).get(MODEL)
    assert response.status_code == 404
    assert "fit_value_model" in response.json()["detail"]


def test_a_requester_may_not_read_the_value_model(api_for, requester, fit):
    assert api_for(requester).get(MODEL).status_code == 403
    assert api_for(None).get(MODEL).status_code in (401, 403)


def test_the_value_model_route_is_not_taken_for_an_external_id(api_for, agent, fit):
    # given a customer whose external id is "value-model", the path still reaches the model
    factories.customer(external_id="value-model")
    assert "bg_nbd" in api_for(agent).get(MODEL).json()


def test_the_value_model_reads_in_two_queries(api_for, agent, fit, django_assert_max_num_queries):
    client = api_for(agent)
    # the session user's permissions (groups, user permissions), the newest fit
    with django_assert_max_num_queries(3):
        assert client.get(MODEL).status_code == 200


# --- the customer ------------------------------------------------------------------------------------


def test_the_customer_carries_rfm_and_value(api_for, agent, valued):
    body = api_for(agent).get("/api/v1/customers/VAL1/").json()

    assert body["rfm"] == {
        "recency_score": 1,
        "frequency_score": 4,
        "monetary_score": 5,
        "segment": "at_risk",
    }
    assert body["value"] == {
        "expected_purchases_90d": 0.4,
        "p_alive": 0.31,
        "expected_spend": 52.5,
        "clv_12m": 612.25,
        "lead_score": 17.5,
    }
    _assert_matches_schema(body, "/api/v1/customers/{external_id}/")


def test_a_customer_without_a_stored_value_has_null_rfm_and_value(api_for, agent):
    factories.customer(external_id="NEW1")
    body = api_for(agent).get("/api/v1/customers/NEW1/").json()
    assert body["rfm"] is None and body["value"] is None
    _assert_matches_schema(body, "/api/v1/customers/{external_id}/")


def test_value_fields_leave_the_masking_as_it_was(api_for, requester, valued):
    # given a viewer without view_pii
    response = api_for(requester).get("/api/v1/customers/VAL1/")
    # then the whole body shows neither the e-mail nor the phone, and the value still shows
    text = response.content.decode()
    assert response.status_code == 200
    assert "zhang.wei@example.com" not in text and "13812345678" not in text
    assert response.json()["rfm"]["segment"] == "at_risk"


# --- lead score rules ----------------------------------------------------------------------------------


def _rule(**fields: Any) -> dict:
    return {
        "name": "orders",
        "kind": "event",
        "event_type": "order",
        "points": 10,
        "half_life_days": 30,
        **fields,
    }


def test_a_manager_creates_changes_and_deletes_a_lead_score_rule(
    api_for, manager, django_capture_on_commit_callbacks
):
    client = api_for(manager)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(RULES, _rule(), format="json")
    assert created.status_code == 201
    rule_id = created.json()["id"]
    assert created.json() == {**_rule(), "id": rule_id, "condition": None, "active": True}

    changed = client.patch(f"{RULES}{rule_id}/", {"points": 2.5}, format="json")
    assert changed.status_code == 200 and LeadScoreRule.objects.get().points == 2.5

    assert client.delete(f"{RULES}{rule_id}/").status_code == 204
    assert not LeadScoreRule.objects.exists()


def test_an_attribute_rule_is_saved_with_its_condition(api_for, manager):
    condition = {"attr": "city", "op": "in", "value": ["Beijing", "Shanghai"]}
    response = api_for(manager).post(
        RULES, _rule(kind="attribute", event_type="", half_life_days=None, condition=condition), format="json"
    )
    assert response.status_code == 201
    assert LeadScoreRule.objects.get().condition == condition


def test_an_agent_reads_but_may_not_change_lead_score_rules(api_for, agent):
    rule = LeadScoreRule.objects.create(name="x", kind="event", event_type="order", points=1)
    client = api_for(agent)
    assert client.get(RULES).status_code == 200
    assert client.post(RULES, _rule(), format="json").status_code == 403
    assert client.patch(f"{RULES}{rule.pk}/", {"points": 9}, format="json").status_code == 403
    assert client.delete(f"{RULES}{rule.pk}/").status_code == 403
    assert LeadScoreRule.objects.get().points == 1


def test_a_requester_may_not_read_lead_score_rules(api_for, requester):
    assert api_for(requester).get(RULES).status_code == 403


def test_a_bad_lead_score_rule_gets_a_400_naming_the_field(api_for, manager):
    response = api_for(manager).post(RULES, _rule(half_life_days=0, event_type="not a type"), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert "half_life_days" in json.dumps(errors) and "event_type" in json.dumps(errors)
    assert not LeadScoreRule.objects.exists()


def test_a_condition_on_a_personal_field_needs_view_pii(api_for, make_user, support_team):
    # given a manager without view_pii
    manager = make_user("plainboss", role="manager", team=support_team.name, pii=False)
    condition = {"attr": "email", "op": "contains", "value": "@vip.example.com"}
    response = api_for(manager).post(
        RULES, _rule(kind="attribute", event_type="", half_life_days=None, condition=condition), format="json"
    )
    assert response.status_code == 403
    assert not LeadScoreRule.objects.exists()


def test_an_unknown_rule_is_404(api_for, manager):
    assert api_for(manager).get(f"{RULES}999999/").status_code == 404


def test_the_rule_list_reads_in_a_fixed_number_of_queries(api_for, agent, django_assert_max_num_queries):
    LeadScoreRule.objects.bulk_create(
        [LeadScoreRule(name=f"r{i}", kind="event", event_type="order", points=i) for i in range(20)]
    )
    client = api_for(agent)
    # the session user's permissions (groups, user permissions), the rules
    with django_assert_max_num_queries(3):
        assert len(client.get(RULES).json()) == 20


# --- the customer page ------------------------------------------------------------------------------


def test_the_customer_page_shows_the_value_and_still_masks(client_for, requester, valued):
    # given a viewer without view_pii
    response = client_for(requester).get(reverse("crm_tags:customer_detail", args=["VAL1"]))
    html = response.content.decode()
    # then the panel shows the segment in words and the CLV, and the whole page hides e-mail and phone
    assert response.status_code == 200
    assert 'id="customer-value-segment">At risk of churning<' in html
    assert ">612.25<" in html
    assert "zhang.wei@example.com" not in html and "13812345678" not in html


def test_a_customer_without_a_value_says_it_is_not_computed(client_for, agent):
    factories.customer(external_id="NEW2")
    html = client_for(agent).get(reverse("crm_tags:customer_detail", args=["NEW2"])).content.decode()
    assert "Not computed yet" in html
