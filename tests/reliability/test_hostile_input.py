"""Issue 16, item 1: every hostile input found by the probe answers 400 naming the field, and changes nothing.

Each test is one reproduction from the issue (NUL in searches and CSV cells, lone surrogates, deep JSON,
huge numbers in rules, A/B tests and imports, `[null, null]` bodies, Unicode digits, an SLA beyond the
calendar's horizon). Before the input layer (config/inputs.py) every one of them was a 500.
"""

import io
import json

import pytest

from campaigns.models import ABTest, DailyMetric
from crm_tags.models import Customer, Event, Tag, TagBuild, TagVersion
from tests.campaigns.factories import campaign_make, csv_bytes
from tests.crm_tags import factories as crm
from tickets.models import SlaPolicy, Ticket

pytestmark = pytest.mark.django_db

WINDOWED = {"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1}


def errors_of(response) -> list[dict]:
    body = response.json()
    assert body["detail"], body
    return body["errors"]


def fields_of(response) -> set[str]:
    return {e.get("field") or e.get("path") or e.get("column") for e in errors_of(response)}


def csv_upload(text: str, name: str = "data.csv") -> io.BytesIO:
    handle = io.BytesIO(text.encode("utf-8"))
    handle.name = name
    return handle


def nested(levels: int, leaf: str = "1") -> str:
    return "[" * levels + leaf + "]" * levels


# --- NUL bytes in searches ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/tickets/", "/api/v1/customers/", "/api/v1/kb/articles/", "/api/v1/campaigns/"]
)
def test_nul_in_an_api_search_is_a_400_naming_q(api_for, agent, path):
    # given an agent, who may search all four lists
    # when the search text holds a NUL byte
    response = api_for(agent).get(path + "?q=%00")
    # then the API refuses it, naming the parameter, in its error shape
    assert response.status_code == 400
    assert errors_of(response) == [
        {"field": "q", "code": "null_characters", "message": "Text may not contain NUL characters (U+0000)."}
    ]


@pytest.mark.parametrize("path", ["/requests/queue/", "/kb/"])
def test_nul_in_a_page_search_is_a_400_page_naming_q(client_for, agent, path):
    # when an agent's search on a page holds a NUL byte
    response = client_for(agent).get(path + "?q=a%00b")
    # then the page answers 400 and says which field
    assert response.status_code == 400
    assert b'id="bad-request"' in response.content
    assert b"<strong>q</strong>" in response.content


def test_nul_in_a_customer_import_cell_rejects_the_file_and_imports_nothing(api_for, agent):
    # given a customer file whose second row has a NUL inside the name
    text = "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n"
    text += "A1,Ann,,,,,,,web\nA2,B\x00b,,,,,,,web\n"
    # when it is imported
    response = api_for(agent).post(
        "/api/v1/customers/import/", {"file": csv_upload(text)}, format="multipart"
    )
    # then the file is rejected at that row and column, and no customer was written
    assert response.status_code == 400
    assert errors_of(response) == [
        {"row": 3, "column": "name", "message": "Text may not contain NUL characters (U+0000)."}
    ]
    assert Customer.objects.count() == 0


def test_nul_in_an_event_import_cell_rejects_the_file(api_for, agent):
    # given a known customer and an event file with a NUL in the channel
    crm.customer(external_id="E1")
    text = "customer_external_id,event_type,occurred_at,amount,channel\nE1,order,2026-03-01,10,w\x00b\n"
    # when it is imported
    response = api_for(agent).post("/api/v1/events/import/", {"file": csv_upload(text)}, format="multipart")
    # then it is refused naming the cell, and no event is stored
    assert response.status_code == 400
    assert fields_of(response) == {"channel"}
    assert Event.objects.count() == 0


# --- lone surrogates --------------------------------------------------------------------------------


def test_lone_surrogate_in_a_rule_value_is_a_400_naming_its_path(api_for, agent):
    # given a rule tag
    tag = crm.rule_tag("lonely")
    # when a version is saved whose value is half a surrogate pair (valid JSON: "\ud800")
    body = '{"definition": {"attr": "city", "op": "=", "value": "x\\ud800"}, "base_version": 0}'
    response = api_for(agent).post(
        "/api/v1/tags/lonely/versions/", body, content_type="application/json", HTTP_IF_MATCH='"0"'
    )
    # then the API names the value and saves no version
    assert response.status_code == 400
    assert fields_of(response) == {"definition.value"}
    assert errors_of(response)[0]["code"] == "surrogate_characters"
    assert TagVersion.objects.filter(tag=tag).count() == 0


# --- deep JSON ------------------------------------------------------------------------------------


def test_5000_levels_to_the_token_endpoint_without_credentials_is_a_400(api_for):
    # when anyone posts 5,000 nested arrays to the sign-in endpoint
    response = api_for(None).post(
        "/api/v1/auth/token/", '{"username": ' + nested(5000) + "}", content_type="application/json"
    )
    # then it is refused before parsing (no RecursionError), naming where the nesting got too deep
    assert response.status_code == 400
    [error] = errors_of(response)
    assert error["code"] == "too_deep"
    assert error["field"].startswith("username[0][0]")


def test_5000_levels_to_the_tickets_endpoint_is_a_400_and_files_nothing(api_for, requester):
    body = '{"title": "Deep", "type": "incident", "urgency": "routine", "description": ' + nested(5000) + "}"
    response = api_for(requester).post("/api/v1/tickets/", body, content_type="application/json")
    assert response.status_code == 400
    assert errors_of(response)[0]["field"].startswith("description")
    assert Ticket.objects.count() == 0


def test_1000_levels_to_a_tag_preview_is_a_400_naming_the_definition(api_for, agent):
    crm.rule_tag("deep")
    body = (
        '{"definition": ' + '{"not": ' * 1000 + '{"attr": "city", "op": "=", "value": "x"}' + "}" * 1000 + "}"
    )
    response = api_for(agent).post("/api/v1/tags/deep/preview/", body, content_type="application/json")
    assert response.status_code == 400
    assert errors_of(response)[0]["field"].startswith("definition.not.not")


# --- numbers and days in tag rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "path"), [(1e12, "value"), ([0, 1e12], "value[1]")], ids=["value", "between"]
)
def test_days_since_last_beyond_a_century_is_refused_when_saved(api_for, agent, value, path):
    # given a rule tag
    tag = crm.rule_tag("lapsed")
    op = "between" if isinstance(value, list) else ">"
    rule = {"event": "order", "agg": "days_since_last", "op": op, "value": value}
    # when a version with 10^12 days is saved
    response = api_for(agent).post(
        "/api/v1/tags/lapsed/versions/", {"definition": rule, "base_version": 0}, format="json"
    )
    # then it is refused naming the value, and no version exists to be published
    assert response.status_code == 400
    assert fields_of(response) == {path}
    assert TagVersion.objects.filter(tag=tag).count() == 0


def test_days_since_last_beyond_a_century_is_refused_by_a_preview(api_for, agent):
    crm.rule_tag("lapsed")
    rule = {"event": "order", "agg": "days_since_last", "op": ">", "value": 1e12}
    response = api_for(agent).post("/api/v1/tags/lapsed/preview/", {"definition": rule}, format="json")
    assert response.status_code == 400
    assert fields_of(response) == {"value"}


def test_as_of_in_year_1_is_refused_by_a_preview(api_for, agent):
    crm.rule_tag("early", WINDOWED)
    response = api_for(agent).post(
        "/api/v1/tags/early/preview/", {"version": 1, "as_of": "0001-01-02"}, format="json"
    )
    assert response.status_code == 400
    assert fields_of(response) == {"as_of"}


def test_as_of_in_year_1_is_refused_at_publish_and_nothing_is_published(api_for, manager, agent):
    # given a published windowed rule (v1) and a second version
    tag = crm.rule_tag("early", WINDOWED)
    crm.version(tag, {**WINDOWED, "value": 2})
    response = api_for(manager).post(
        "/api/v1/tags/early/publish/", {"version": 1, "rollout_percent": 100}, format="json"
    )
    assert response.status_code == 202
    builds = TagBuild.objects.filter(tag=tag).count()
    # when v2 is published as of 0001-01-02 (its window would start before year 1)
    response = api_for(manager).post(
        "/api/v1/tags/early/publish/",
        {"version": 2, "rollout_percent": 100, "as_of": "0001-01-02"},
        format="json",
    )
    # then the publish is refused naming as_of: v1 stays current and no build was queued to fail
    assert response.status_code == 400
    assert fields_of(response) == {"as_of"}
    tag.refresh_from_db()
    assert tag.current_version.number == 1
    assert TagBuild.objects.filter(tag=tag).count() == builds


def test_a_version_stored_before_the_checks_is_refused_at_publish(api_for, manager):
    # given a published v1 and a v2 with 10^12 days saved before the rule checks bounded them
    tag = crm.rule_tag("legacy", WINDOWED)
    api_for(manager).post(
        "/api/v1/tags/legacy/publish/", {"version": 1, "rollout_percent": 100}, format="json"
    )
    bad = {"event": "order", "agg": "days_since_last", "op": ">", "value": 1e12}
    TagVersion.objects.create(tag=tag, number=2, definition=bad, depends_on=[])
    builds = TagBuild.objects.filter(tag=tag).count()
    # when v2 is published
    response = api_for(manager).post(
        "/api/v1/tags/legacy/publish/", {"version": 2, "rollout_percent": 100}, format="json"
    )
    # then it is refused naming the value; v1 stays current and no build is queued
    assert response.status_code == 400
    assert fields_of(response) == {"value"}
    tag.refresh_from_db()
    assert tag.current_version.number == 1
    assert TagBuild.objects.filter(tag=tag).count() == builds


# --- bodies that are not objects ----------------------------------------------------------------


@pytest.mark.parametrize("action", ["preview/cancel", "rollback"])
def test_a_list_body_to_cancel_or_rollback_is_a_400(api_for, manager, action):
    # given a tag with a published version
    tag = crm.rule_tag("listed", WINDOWED)
    # when the body is the JSON array [null, null]
    response = api_for(manager).post(
        f"/api/v1/tags/listed/{action}/", "[null, null]", content_type="application/json"
    )
    # then it is refused as not an object, and nothing was built
    assert response.status_code == 400
    assert errors_of(response)[0]["code"] == "invalid"
    assert TagBuild.objects.filter(tag=tag).count() == 0


# --- numbers ------------------------------------------------------------------------------------------


def test_an_ab_variant_with_10_to_the_12_exposures_is_a_400(api_for, requester):
    # given the owner's campaign
    campaign = campaign_make(owner=requester)
    # when an A/B test is created with 10^12 exposures on the control
    body = {
        "name": "Subject line",
        "variants": [
            {"name": "A", "exposures": 10**12, "conversions": 1},
            {"name": "B", "exposures": 100, "conversions": 2},
        ],
    }
    response = api_for(requester).post(f"/api/v1/campaigns/{campaign.code}/ab-tests/", body, format="json")
    # then the count is refused naming it, and no test exists
    assert response.status_code == 400
    assert fields_of(response) == {"variants[0].exposures"}
    assert ABTest.objects.count() == 0


@pytest.mark.parametrize("clicks", ["²", "12345678901234567890"], ids=["superscript", "20-digits"])
def test_a_metrics_count_that_is_no_count_rejects_the_file(api_for, requester, clicks):
    # given the owner's campaign and a metrics file whose clicks are `²` (isdigit() says yes) or 20 digits
    campaign = campaign_make(owner=requester)
    lines = [
        "date,channel,spend,impressions,clicks,leads,conversions,revenue",
        f"2026-06-01,wechat,10,100,{clicks},1,1,20",
    ]
    upload = io.BytesIO(csv_bytes(lines))
    upload.name = "m.csv"
    # when it is imported
    response = api_for(requester).post(
        f"/api/v1/campaigns/{campaign.code}/metrics/import/", {"file": upload}, format="multipart"
    )
    # then row 2's clicks are named, and no metric is stored
    assert response.status_code == 400
    assert [(e["row"], e["column"]) for e in errors_of(response)] == [(2, "clicks")]
    assert DailyMetric.objects.count() == 0


def test_lookback_days_in_unicode_digits_is_a_400(api_for, requester):
    campaign = campaign_make(owner=requester)
    response = api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/attribution/?lookback_days=%C2%B2")
    assert response.status_code == 400
    assert fields_of(response) == {"lookback_days"}


def test_a_team_filter_in_unicode_digits_is_a_400(api_for, agent):
    response = api_for(agent).get("/api/v1/tickets/?team=%C2%B2")
    assert response.status_code == 400
    assert fields_of(response) == {"team"}


def test_page_size_null_is_a_400_naming_it(api_for, agent):
    response = api_for(agent).get("/api/v1/tickets/?page_size=null")
    assert response.status_code == 400
    assert fields_of(response) == {"page_size"}


# --- an SLA beyond the calendar's horizon ---------------------------------------------------------


@pytest.fixture
def default_sla(db) -> None:
    """The default calendar (9 hours a weekday) and policies, whatever an earlier test left."""
    from tickets.services import sla_defaults_ensure

    sla_defaults_ensure()


def test_an_sla_target_beyond_three_years_is_refused_when_saved(manager, default_sla):
    # given the planned policy (on the default calendar: 9 hours a weekday)
    from tickets import services

    policy = SlaPolicy.objects.select_related("calendar").get(urgency="planned")
    before = policy.resolution_minutes
    # when a manager sets a resolution of 4 million business minutes (about 30 years of working days)
    with pytest.raises(Exception) as refused:
        services.sla_policy_update(
            policy=policy,
            by=manager,
            first_response_minutes=policy.first_response_minutes,
            resolution_minutes=4_000_000,
            calendar=policy.calendar,
        )
    # then the service names the field and the policy is unchanged
    assert list(refused.value.message_dict) == ["resolution_minutes"]
    assert SlaPolicy.objects.get(pk=policy.pk).resolution_minutes == before


def test_the_sla_form_names_a_target_beyond_three_years(manager, default_sla):
    from tickets.forms import SlaPolicyForm

    policy = SlaPolicy.objects.select_related("calendar").get(urgency="planned")
    form = SlaPolicyForm(
        {"first_response_minutes": 60, "resolution_minutes": 4_000_000, "calendar": policy.calendar_id},
        instance=policy,
    )
    assert not form.is_valid()
    assert "resolution_minutes" in form.errors


def test_a_ticket_whose_sla_due_date_lies_beyond_three_years_is_a_400_and_not_filed(
    api_for, requester, default_sla
):
    # given a planned policy stored (before this check existed) with a 30-year resolution target
    SlaPolicy.objects.filter(urgency="planned").update(resolution_minutes=4_000_000)
    # when a planned request is filed
    response = api_for(requester).post(
        "/api/v1/tickets/", {"title": "Next decade", "type": "feature", "urgency": "planned"}, format="json"
    )
    # then it is refused naming the urgency, and no ticket (nor key) was taken
    assert response.status_code == 400
    assert fields_of(response) == {"urgency"}
    assert Ticket.objects.count() == 0


# --- the layer is there for new endpoints too -------------------------------------------------------


def test_a_nul_in_any_query_parameter_of_any_api_operation_is_a_400(api_for, agent):
    # a parameter nobody reads is refused too: the check is not up to each view
    response = api_for(agent).get("/api/v1/me/?anything=%00")
    assert response.status_code == 400
    assert fields_of(response) == {"anything"}


def test_a_nul_in_a_path_parameter_is_a_400(api_for, agent):
    response = api_for(agent).get("/api/v1/tickets/MT-%00/")
    assert response.status_code == 400
    assert fields_of(response) == {"path"}


def test_a_nul_anywhere_in_a_json_body_is_a_400_naming_its_path(api_for, requester):
    body = json.dumps({"title": "ok", "type": "incident", "urgency": "routine", "extra": {"x": ["\x00"]}})
    response = api_for(requester).post("/api/v1/tickets/", body, content_type="application/json")
    assert response.status_code == 400
    assert fields_of(response) == {"extra.x[0]"}
    assert Ticket.objects.count() == 0


def test_an_api_path_that_matches_nothing_answers_json(api_for, agent):
    response = api_for(agent).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert errors_of(response) == [{"message": "Not found.", "code": "not_found"}]


def test_a_tag_name_with_a_nul_is_refused_by_the_page_form(client_for, agent):
    # a page form: the middleware refuses the whole POST before the view, naming the field
    response = client_for(agent).post("/customers/tags/new/", {"slug": "x", "name": "a\x00b", "kind": "rule"})
    assert response.status_code == 400
    assert b"<strong>name</strong>" in response.content
    assert not Tag.objects.filter(slug="x").exists()
