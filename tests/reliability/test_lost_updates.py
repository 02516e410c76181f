"""No lost update (issue 16, item 3): every editable object carries a version (the ETag on the API, the
hidden `version` field on the pages). An edit without its version is 428, with an older one 409; either
way nothing is saved and the answer carries the current values."""

import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from config.concurrency import version_token
from knowledge_base.models import Article
from tests.campaigns.factories import campaign_make
from tests.conftest import in_english
from tests.crm_tags import factories as tag_factories
from tests.knowledge_base.factories import make_article
from tests.tickets.factories import make_ticket
from tickets.models import BusinessCalendar, SavedView, SlaPolicy, Ticket

pytestmark = pytest.mark.django_db

TRIAGE = {"type": "incident", "feasibility": "feasible", "feasibility_note": "", "is_complex": ""}
RULE_A = {"attr": "city", "op": "=", "value": "Shanghai"}
RULE_B = {"attr": "city", "op": "=", "value": "Beijing"}


def hidden_version(html: str, form_id: str) -> str:
    """The hidden `version` field of one form of a page, as the browser would send it."""
    form = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, re.S)
    assert form is not None, f"no form #{form_id}"
    field = re.search(r'<input type="hidden" name="(?:[\w-]+-)?version" value="([^"]*)"', form.group(0))
    assert field is not None, f"no version field in #{form_id}"
    return field.group(1)


def campaign_form(campaign: Campaign, **changes: str) -> dict:
    return {
        "name": campaign.name,
        "objective": campaign.objective,
        "budget": str(campaign.budget),
        "start_date": campaign.start_date.isoformat(),
        "end_date": campaign.end_date.isoformat(),
        "audience_include_mode": "any",
        "channels_text": ", ".join(campaign.channels),
        **changes,
    }


def article_form(article: Article, **changes: str) -> dict:
    return {
        "title": article.title,
        "summary": article.summary,
        "body": article.body,
        "kind": article.kind,
        "language": article.language,
        **changes,
    }


@pytest.fixture
def sla_policy() -> SlaPolicy:
    from tickets.services import sla_defaults_ensure

    sla_defaults_ensure()
    return SlaPolicy.objects.get(urgency="urgent")


def sla_form(policy: SlaPolicy, first_response: int, **extra: object) -> dict:
    return {
        "policy": policy.pk,
        f"p{policy.pk}-first_response_minutes": first_response,
        f"p{policy.pk}-resolution_minutes": policy.resolution_minutes,
        f"p{policy.pk}-calendar": policy.calendar_id,
        **extra,
    }


# --- the three reproductions ----------------------------------------------------------------


def test_campaign_patch_with_a_stale_if_match_is_409_and_keeps_the_other_edit(api_for, requester, agent):
    # given a campaign the requester and an agent both read at the same version
    campaign = campaign_make(owner=requester, code="c-stale", name="Spring sale")
    url = f"/api/v1/campaigns/{campaign.code}/"
    etag = '"1"'  # a new campaign's, as GET gives it (checked at the end)
    first = api_for(agent).patch(url, {"budget": "500.00"}, format="json", HTTP_IF_MATCH=etag)
    assert first.status_code == 200
    # when the requester saves with the ETag they read
    stale = api_for(requester).patch(url, {"name": "Renamed"}, format="json", HTTP_IF_MATCH=etag)
    # then 409, nothing of theirs saved, and the answer shows the agent's budget at the new version
    assert stale.status_code == 409
    body = stale.json()
    assert (body["current"]["name"], body["current"]["budget"]) == ("Spring sale", 500.0)
    assert stale["ETag"] == body["etag"] == first["ETag"] == api_for(requester).get(url)["ETag"] != etag
    campaign.refresh_from_db()
    assert (campaign.name, campaign.budget) == ("Spring sale", Decimal("500.00"))
    assert campaign_make(owner=requester, code="c-new").lock_version == 1


def test_article_patch_without_if_match_is_428_and_overwrites_nothing(api_for, agent):
    # given a draft
    article = make_article(agent, title="Coupon FAQ", body="v1")
    # when an API client patches it without If-Match
    response = api_for(agent).patch(f"/api/v1/kb/articles/{article.pk}/", {"body": "blind"}, format="json")
    # then 428 with the current article and its ETag, and the body is unchanged
    assert response.status_code == 428
    assert response.json()["current"]["body"] == "v1"
    assert response["ETag"] == f'"{article.lock_version}"'
    assert response.json()["errors"][0]["field"] == "If-Match"
    assert Article.objects.get(pk=article.pk).body == "v1"


def test_triage_form_without_its_version_is_428_and_keeps_the_other_agents_fields(
    client_for, agent, manager, requester
):
    # given a ticket another agent triaged as urgent
    in_english(manager)
    ticket = make_ticket(requester)
    first = client_for(agent).post(
        f"/requests/{ticket.key}/triage/", {**TRIAGE, "urgency": "urgent", "version": version_token(ticket)}
    )
    assert first.status_code == 302
    # when the manager's triage form comes without its hidden version field
    response = client_for(manager).post(f"/requests/{ticket.key}/triage/", {**TRIAGE, "urgency": "planned"})
    # then 428: the form again from the current ticket, a message naming the missing version, nothing saved
    html = response.content.decode()
    assert response.status_code == 428
    assert 'id="triage-conflict"' in html and "without the version you edited" in html
    assert re.search(r'<option value="urgent" selected>', html)
    assert hidden_version(html, "triage-form") == str(Ticket.objects.get(pk=ticket.pk).lock_version)
    assert Ticket.objects.get(pk=ticket.pk).urgency == "urgent"


# --- ticket triage --------------------------------------------------------------------------------------


def test_triage_with_the_version_from_the_page_is_saved(client_for, agent, requester):
    ticket = make_ticket(requester)
    page = client_for(agent).get(f"/requests/{ticket.key}/").content.decode()
    response = client_for(agent).post(
        f"/requests/{ticket.key}/triage/",
        {**TRIAGE, "urgency": "urgent", "version": hidden_version(page, "triage-form")},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.urgency, ticket.lock_version) == ("urgent", 2)


def test_stale_triage_shows_the_current_values_and_what_was_typed(client_for, agent, manager, requester):
    # given a ticket the agent triaged as urgent after the manager opened it
    in_english(manager)
    ticket = make_ticket(requester)
    opened = ticket.lock_version
    client_for(agent).post(
        f"/requests/{ticket.key}/triage/", {**TRIAGE, "urgency": "urgent", "version": opened}
    )
    # when the manager saves "planned" from the old page
    response = client_for(manager).post(
        f"/requests/{ticket.key}/triage/", {**TRIAGE, "urgency": "planned", "version": opened}
    )
    # then 409 with the agent's value selected and the manager's typed value listed as not saved
    html = response.content.decode()
    assert response.status_code == 409
    assert re.search(r'<option value="urgent" selected>', html)
    assert re.search(r"<dt[^>]*>Urgency</dt><dd[^>]*>Planned</dd>", html)
    assert Ticket.objects.get(pk=ticket.pk).urgency == "urgent"


def test_stale_triage_over_htmx_answers_409_with_the_ticket_body(client_for, agent, manager, requester):
    ticket = make_ticket(requester)
    opened = ticket.lock_version
    client_for(agent).post(
        f"/requests/{ticket.key}/triage/", {**TRIAGE, "urgency": "urgent", "version": opened}
    )
    response = client_for(manager).post(
        f"/requests/{ticket.key}/triage/",
        {**TRIAGE, "urgency": "planned", "version": opened},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 409
    assert 'id="triage-conflict"' in response.content.decode()
    assert "<html" not in response.content.decode()


def test_the_ticket_api_gives_its_version_as_etag(api_for, client_for, agent, requester):
    # given a ticket read through the API
    ticket = make_ticket(requester)
    url = f"/api/v1/tickets/{ticket.key}/"
    before = api_for(agent).get(url)["ETag"]
    # when a reply is added (no editor holds it) and then the triage changes
    api_for(requester).post(f"{url}comments/", {"body": "Any news?"}, format="json")
    after_reply = api_for(agent).get(url)["ETag"]
    client_for(agent).post(f"/requests/{ticket.key}/triage/", {**TRIAGE, "urgency": "urgent", "version": 1})
    # then only the triage gave it a new version
    assert before == after_reply == '"1"'
    assert api_for(agent).get(url)["ETag"] == '"2"'


# --- campaign ------------------------------------------------------------------------------------------


def test_campaign_patch_with_the_current_etag_is_saved_and_answers_the_new_one(api_for, requester):
    campaign = campaign_make(owner=requester, code="c-ok")
    url = f"/api/v1/campaigns/{campaign.code}/"
    etag = api_for(requester).get(url)["ETag"]
    response = api_for(requester).patch(url, {"name": "Renamed"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    campaign.refresh_from_db()
    assert campaign.name == "Renamed"
    assert response["ETag"] == f'"{campaign.lock_version}"' != etag


def test_campaign_patch_accepts_the_etag_a_compressing_proxy_made_weak(api_for, requester):
    campaign = campaign_make(owner=requester, code="c-weak")
    url = f"/api/v1/campaigns/{campaign.code}/"
    etag = api_for(requester).get(url)["ETag"]
    response = api_for(requester).patch(url, {"name": "Renamed"}, format="json", HTTP_IF_MATCH=f"W/{etag}")
    assert response.status_code == 200


@pytest.mark.parametrize("header", [None, "*"])
def test_campaign_patch_without_a_version_is_428_with_the_current_values(api_for, requester, header):
    campaign = campaign_make(owner=requester, code="c-blind", name="Spring sale")
    extra = {"HTTP_IF_MATCH": header} if header else {}
    response = api_for(requester).patch(
        f"/api/v1/campaigns/{campaign.code}/", {"name": "Blind"}, format="json", **extra
    )
    assert response.status_code == 428
    assert response.json()["current"]["name"] == "Spring sale"
    assert Campaign.objects.get(pk=campaign.pk).name == "Spring sale"


def test_campaign_patch_by_someone_who_may_not_edit_is_403_before_the_version(api_for, requester):
    campaign = campaign_make(owner=requester, code="c-done", status=Campaign.Status.REVIEWED)
    response = api_for(requester).patch(f"/api/v1/campaigns/{campaign.code}/", {"name": "x"}, format="json")
    assert response.status_code == 403


def test_campaign_page_edit_with_its_version_is_saved(client_for, requester):
    campaign = campaign_make(owner=requester, code="c-page")
    page = client_for(requester).get(f"/campaigns/{campaign.code}/edit/").content.decode()
    response = client_for(requester).post(
        f"/campaigns/{campaign.code}/edit/",
        campaign_form(campaign, name="Renamed", version=hidden_version(page, "campaign-form")),
    )
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).name == "Renamed"


def test_stale_campaign_page_edit_is_409_with_the_current_plan(client_for, api_for, requester, agent):
    # given the requester opened the edit page, then an agent changed the budget through the API
    in_english(requester)
    campaign = campaign_make(owner=requester, code="c-page-stale", name="Spring sale")
    page = client_for(requester).get(f"/campaigns/{campaign.code}/edit/").content.decode()
    opened = hidden_version(page, "campaign-form")
    api_for(agent).patch(
        f"/api/v1/campaigns/{campaign.code}/",
        {"budget": "777.00"},
        format="json",
        HTTP_IF_MATCH=f'"{opened}"',
    )
    # when the requester saves a new name from the page they opened
    response = client_for(requester).post(
        f"/campaigns/{campaign.code}/edit/", campaign_form(campaign, name="Renamed", version=opened)
    )
    # then 409: the form shows the agent's budget, the typed name is listed as not saved, nothing saved
    html = response.content.decode()
    assert response.status_code == 409
    assert 'id="edit-conflict"' in html and 'value="777.00"' in html
    assert re.search(r"<dt[^>]*>Name</dt><dd[^>]*>Renamed</dd>", html)
    assert Campaign.objects.get(pk=campaign.pk).name == "Spring sale"


def test_campaign_page_edit_without_its_version_is_428(client_for, requester):
    campaign = campaign_make(owner=requester, code="c-page-blind", name="Spring sale")
    response = client_for(requester).post(
        f"/campaigns/{campaign.code}/edit/", campaign_form(campaign, name="X")
    )
    assert response.status_code == 428
    assert 'id="edit-conflict"' in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).name == "Spring sale"


# --- article ---------------------------------------------------------------------------------------------


def test_article_patch_with_the_current_etag_is_saved(api_for, agent):
    article = make_article(agent, body="v1")
    url = f"/api/v1/kb/articles/{article.pk}/"
    etag = api_for(agent).get(url)["ETag"]
    response = api_for(agent).patch(url, {"body": "v2"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] == f'"{response.json()["version_token"]}"' != etag
    assert Article.objects.get(pk=article.pk).body == "v2"


def test_article_page_edit_with_its_version_is_saved(client_for, agent):
    article = make_article(agent, body="v1")
    page = client_for(agent).get(f"/kb/articles/{article.pk}/edit/").content.decode()
    response = client_for(agent).post(
        f"/kb/articles/{article.pk}/edit/",
        article_form(article, body="v2", version=hidden_version(page, "article-form")),
    )
    assert response.status_code == 302
    assert Article.objects.get(pk=article.pk).body == "v2"


def test_article_page_edit_without_its_version_is_428_with_the_current_body(client_for, agent):
    article = make_article(agent, body="v1")
    response = client_for(agent).post(f"/kb/articles/{article.pk}/edit/", article_form(article, body="blind"))
    html = response.content.decode()
    assert response.status_code == 428
    assert 'id="edit-conflict"' in html and "v1</textarea>" in html
    assert Article.objects.get(pk=article.pk).body == "v1"


# --- tag draft (the rule) ----------------------------------------------------------------------------------


def test_tag_versions_etag_is_the_newest_number_and_if_match_saves(api_for, agent):
    tag_factories.rule_tag("draft-ok")
    url = "/api/v1/tags/draft-ok/versions/"
    assert api_for(agent).get(url)["ETag"] == '"0"'
    saved = api_for(agent).post(url, {"definition": RULE_A}, format="json", HTTP_IF_MATCH='"0"')
    assert saved.status_code == 201 and saved.json() == {"version": 1}
    assert saved["ETag"] == api_for(agent).get(url)["ETag"] == '"1"'


def test_tag_version_saved_from_a_stale_etag_is_409_with_the_newest_rule(api_for, agent, manager):
    # given an agent saved version 1 after the manager read the (empty) list
    from crm_tags.models import TagVersion

    tag_factories.rule_tag("draft-stale")
    url = "/api/v1/tags/draft-stale/versions/"
    etag = api_for(manager).get(url)["ETag"]
    api_for(agent).post(url, {"definition": RULE_A}, format="json", HTTP_IF_MATCH=etag)
    # when the manager saves from what they read
    response = api_for(manager).post(url, {"definition": RULE_B}, format="json", HTTP_IF_MATCH=etag)
    # then 409 with the agent's rule as current, and only that rule stored
    assert response.status_code == 409
    assert response.json()["current"]["definition"] == RULE_A and response["ETag"] == '"1"'
    assert list(TagVersion.objects.filter(tag__slug="draft-stale").values_list("definition", flat=True)) == [
        RULE_A
    ]


def test_tag_version_saved_without_a_version_is_428(api_for, agent):
    tag_factories.rule_tag("draft-blind", RULE_A)
    response = api_for(agent).post(
        "/api/v1/tags/draft-blind/versions/", {"definition": RULE_B}, format="json"
    )
    assert response.status_code == 428
    assert response.json()["current"]["version"] == 1 and response["ETag"] == '"1"'


def test_tag_page_saves_a_rule_with_the_version_from_the_page(client_for, agent):
    tag = tag_factories.rule_tag("draft-page", RULE_A)
    page = client_for(agent).get(f"/customers/tags/{tag.slug}/").content.decode()
    response = client_for(agent).post(
        f"/customers/tags/{tag.slug}/versions/",
        {"definition": json.dumps(RULE_B), "version": hidden_version(page, "rule-form")},
    )
    assert response.status_code == 302
    assert tag.versions.count() == 2


def test_tag_page_save_without_a_version_is_428_showing_the_newest_rule_and_the_typed_one(client_for, agent):
    tag = tag_factories.rule_tag("draft-page-blind", RULE_A)
    response = client_for(agent).post(
        f"/customers/tags/{tag.slug}/versions/",
        {"definition": json.dumps({"attr": "city", "op": "=", "value": "Xian"})},
    )
    html = response.content.decode()
    assert response.status_code == 428
    assert 'id="rule-conflict"' in html and "Xian" in html and "Shanghai" in html
    assert tag.versions.count() == 1


# --- SLA policy and business calendar -------------------------------------------------------------------


def test_sla_policy_saved_with_its_version(client_for, manager, sla_policy):
    page = client_for(manager).get(reverse("tickets:sla")).content.decode()
    version = hidden_version(page, f"sla-policy-{sla_policy.urgency}")
    response = client_for(manager).post(
        reverse("tickets:sla"), sla_form(sla_policy, 25, **{f"p{sla_policy.pk}-version": version})
    )
    assert response.status_code == 302
    assert SlaPolicy.objects.get(pk=sla_policy.pk).first_response_minutes == 25


def test_stale_sla_policy_is_409_with_the_current_targets(client_for, manager, sla_policy):
    # given a manager saved 25 minutes after another opened the page
    opened = sla_policy.lock_version
    client_for(manager).post(
        reverse("tickets:sla"), sla_form(sla_policy, 25, **{f"p{sla_policy.pk}-version": opened})
    )
    # when the other saves 45 from the page they opened
    response = client_for(manager).post(
        reverse("tickets:sla"), sla_form(sla_policy, 45, **{f"p{sla_policy.pk}-version": opened})
    )
    # then 409 with 25 in the form, and 25 kept
    html = response.content.decode()
    assert response.status_code == 409
    assert (
        'id="edit-conflict"' in html and f'name="p{sla_policy.pk}-first_response_minutes" value="25"' in html
    )
    assert SlaPolicy.objects.get(pk=sla_policy.pk).first_response_minutes == 25


def test_sla_policy_without_its_version_is_428(client_for, manager, sla_policy):
    before = sla_policy.first_response_minutes
    response = client_for(manager).post(reverse("tickets:sla"), sla_form(sla_policy, before + 7))
    assert response.status_code == 428
    assert SlaPolicy.objects.get(pk=sla_policy.pk).first_response_minutes == before


def test_stale_business_calendar_is_409_and_keeps_the_saved_hours(client_for, manager, sla_policy):
    calendar = BusinessCalendar.objects.get(pk=sla_policy.calendar_id)
    form = {
        "calendar": calendar.pk,
        "timezone": calendar.timezone,
        "holidays": "",
        "version": calendar.lock_version,
    }
    first = client_for(manager).post(reverse("tickets:sla"), {**form, "day_0": "08:00-17:00"})
    assert first.status_code == 302
    response = client_for(manager).post(reverse("tickets:sla"), {**form, "day_0": "10:00-19:00"})
    assert response.status_code == 409
    assert [(h.weekday, f"{h.start:%H:%M}") for h in calendar.hours.all()] == [(0, "08:00")]


# --- saved view ------------------------------------------------------------------------------------------


def test_a_new_saved_view_needs_no_version(client_for, agent):
    response = client_for(agent).post(
        reverse("tickets:saved_view_save"), {"name": "Mine", "query": "assignee=me"}
    )
    assert response.status_code == 302
    assert SavedView.objects.get(user=agent).query == "assignee=me"


def test_replacing_a_saved_view_with_its_version_from_the_queue_is_saved(client_for, agent):
    client = client_for(agent)
    client.post(reverse("tickets:saved_view_save"), {"name": "Mine", "query": "assignee=me"})
    page = client.get(reverse("tickets:queue") + "?urgency=urgent").content.decode()
    replace = re.search(r'<form[^>]*data-saved-view-replace="Mine".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', replace))
    response = client.post(reverse("tickets:saved_view_save"), fields)
    assert response.status_code == 302
    view = SavedView.objects.get(user=agent)
    assert (view.query, view.lock_version) == ("urgency=urgent", 2)


def test_replacing_a_saved_view_without_its_version_is_428(client_for, agent):
    client = client_for(agent)
    client.post(reverse("tickets:saved_view_save"), {"name": "Mine", "query": "assignee=me"})
    response = client.post(reverse("tickets:saved_view_save"), {"name": "Mine", "query": "status=done"})
    assert response.status_code == 428
    assert 'id="saved-view-current"' in response.content.decode()
    assert SavedView.objects.get(user=agent).query == "assignee=me"


def test_replacing_a_saved_view_from_a_stale_version_is_409(client_for, agent):
    client = client_for(agent)
    client.post(reverse("tickets:saved_view_save"), {"name": "Mine", "query": "assignee=me"})
    client.post(
        reverse("tickets:saved_view_save"), {"name": "Mine", "query": "urgency=urgent", "version": "1"}
    )
    response = client.post(
        reverse("tickets:saved_view_save"), {"name": "Mine", "query": "status=done", "version": "1"}
    )
    html = response.content.decode()
    assert response.status_code == 409
    assert "urgency=urgent" in html and 'name="version" value="2"' in html
    assert SavedView.objects.get(user=agent).query == "urgency=urgent"


# --- the version counter -------------------------------------------------------------------------------


def test_a_save_of_book_keeping_only_keeps_the_version(requester):
    # given a ticket, when the SLA clock's fields are saved, then its version stays
    ticket = make_ticket(requester)
    ticket.sla_state = Ticket.SlaState.AT_RISK
    ticket.save(update_fields=["sla_state"])
    assert Ticket.objects.get(pk=ticket.pk).lock_version == 1


def test_a_stale_copy_saved_still_raises_the_version(requester):
    # given two copies of a campaign read at version 1, one saved
    campaign = campaign_make(owner=requester, code="c-copies")
    first, second = Campaign.objects.get(pk=campaign.pk), Campaign.objects.get(pk=campaign.pk)
    first.name = "First"
    first.save()
    # when the stale copy is saved too
    second.name = "Second"
    second.save()
    # then the version went up twice (a token read after the first save no longer matches)
    assert (first.lock_version, second.lock_version) == (2, 3)
    assert Campaign.objects.get(pk=campaign.pk).lock_version == 3


# --- the OpenAPI schema ----------------------------------------------------------------------------------


def test_schema_documents_etag_if_match_and_the_409_428_answers():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/campaigns/{code}/", "/api/v1/kb/articles/{id}/"):
        operations = schema["paths"][path]
        patch = operations["patch"]
        if_match = [p for p in patch["parameters"] if p["in"] == "header" and p["name"] == "If-Match"]
        assert if_match and if_match[0]["required"] is True, path
        assert {"409", "428"} <= set(patch["responses"]), path
        error = patch["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        assert {"detail", "errors", "current", "etag"} <= set(
            schema["components"]["schemas"][error]["properties"]
        )
        assert "ETag" in operations["get"]["responses"]["200"].get("headers", {}), path
