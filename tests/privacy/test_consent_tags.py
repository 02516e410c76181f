"""Consent in tags: a withdrawn customer leaves rule tags at the next build and audiences at once, previews
say how many matches consent leaves out, channel exports keep only whom the purpose may reach."""

import csv
import io

import pytest
from django.urls import reverse

from crm_tags import selectors, services
from crm_tags.models import TagBuild, TagMembership, TagMembershipChange
from privacy import consent
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

SHANGHAI = {"attr": "city", "op": "=", "value": "Shanghai"}


def _members(slug: str) -> set[str]:
    return set(TagMembership.objects.filter(tag__slug=slug).values_list("customer__external_id", flat=True))


def _rebuild() -> TagBuild:
    """The next scheduled build of every published rule tag (here: one)."""
    (build,) = services.tags_rebuild_all(trigger=TagBuild.Trigger.SCHEDULE)
    return build


@pytest.fixture
def shanghai(db, django_capture_on_commit_callbacks):
    """Three customers in Shanghai (one in Beijing) and a published rule tag `sh` that has them all."""
    customers = {eid: factories.customer(external_id=eid, city="Shanghai") for eid in ("S1", "S2", "S3")}
    factories.customer(external_id="B1", city="Beijing")
    tag = factories.rule_tag("sh", SHANGHAI)
    with django_capture_on_commit_callbacks(execute=True):
        services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=None)
    assert _members("sh") == {"S1", "S2", "S3"}
    return customers


def _set(api_for, agent, external_id: str, state: str) -> None:
    response = api_for(agent).put(
        f"/api/v1/customers/{external_id}/consent/", {"personalisation": state}, format="json"
    )
    assert response.status_code == 200


def test_withdrawn_customer_leaves_tag_at_next_build_and_audience_at_once_and_comes_back(
    api_for, agent, shanghai
):
    client = api_for(agent)
    # given S1 withdraws consent to personalisation
    _set(api_for, agent, "S1", "withdrawn")
    # then the campaign audience drops them at once, while the tag keeps them until its next build
    assert selectors.audience_count(include=["sh"]) == 2
    assert _members("sh") == {"S1", "S2", "S3"}
    # and the preview says what the build would do: S1 left out by consent and exiting
    preview = client.post("/api/v1/tags/sh/preview/", {"version": 1}, format="json").json()
    assert (preview["matched"], preview["excluded_by_consent"], preview["enter"], preview["exit"]) == (
        2,
        1,
        0,
        1,
    )
    assert "S1" not in [row["external_id"] for row in preview["sample"]]
    # when the tag is rebuilt
    build = _rebuild()
    # then S1 is out, with an "exited" change, and the build counts the one left out
    assert _members("sh") == {"S2", "S3"}
    assert (build.members, build.exited, build.excluded_by_consent) == (2, 1, 1)
    assert TagMembershipChange.objects.filter(
        tag__slug="sh", customer__external_id="S1", change="exited"
    ).exists()
    # when S1 grants consent again
    _set(api_for, agent, "S1", "granted")
    # then they are back in the tag, and so in the audience, after the next build
    build = _rebuild()
    assert _members("sh") == {"S1", "S2", "S3"}
    assert selectors.audience_count(include=["sh"]) == 3
    assert (build.entered, build.excluded_by_consent) == (1, 0)
    preview = client.post("/api/v1/tags/sh/preview/", {"version": 1}, format="json").json()
    assert (preview["matched"], preview["excluded_by_consent"]) == (3, 0)


def test_audience_follows_consent_immediately_between_builds(agent, shanghai):
    # given S2 withdraws personalisation
    consent.consent_set(
        customer=shanghai["S2"], states={"personalisation": "withdrawn"}, source="web", by=agent
    )
    assert selectors.audience_count(include=["sh"]) == 2
    # when they grant it again before any build ran
    consent.consent_set(
        customer=shanghai["S2"], states={"personalisation": "granted"}, source="web", by=agent
    )
    # then they count again at once (they never left the tag)
    assert selectors.audience_count(include=["sh"]) == 3
    assert selectors.audience_count(include=["sh"], include_mode="all") == 3


def test_other_purposes_do_not_take_anyone_out_of_a_tag(agent, shanghai):
    # given S2 withdrew every purpose but personalisation, and S3 set personalisation to unknown
    consent.consent_set(
        customer=shanghai["S2"],
        states={"marketing_email": "withdrawn", "marketing_sms": "withdrawn", "analytics": "withdrawn"},
        source="api",
        by=agent,
    )
    consent.consent_set(
        customer=shanghai["S3"], states={"personalisation": "unknown"}, source="api", by=agent
    )
    # when the tag is rebuilt
    build = _rebuild()
    # then nobody is left out
    assert _members("sh") == {"S1", "S2", "S3"}
    assert build.excluded_by_consent == 0
    assert selectors.audience_count(include=["sh"]) == 3


def test_build_api_and_history_show_the_excluded_count(api_for, client_for, agent, shanghai):
    # given two Shanghai customers withdrew personalisation and the tag was rebuilt
    for eid in ("S1", "S2"):
        consent.consent_set(
            customer=shanghai[eid], states={"personalisation": "withdrawn"}, source="api", by=agent
        )
    build = _rebuild()
    # when the build is read through the API and on the tag page
    data = api_for(agent).get(f"/api/v1/tags/sh/builds/{build.pk}/").json()
    page = client_for(agent).get(reverse("crm_tags:tag_builds", args=["sh"])).content.decode()
    # then both show the two left out
    assert (data["members"], data["excluded_by_consent"]) == (1, 2)
    assert "Excluded by consent" in page
    assert '<td class="build-excluded-by-consent">2</td>' in page


def test_an_uploaded_member_list_is_not_filtered_by_consent(agent, shanghai):
    # given a manual tag and a customer who withdrew personalisation
    consent.consent_set(
        customer=shanghai["S1"], states={"personalisation": "withdrawn"}, source="api", by=agent
    )
    tag = services.tag_create(slug="vip", name="VIP", kind="manual", by=agent)
    # when its member list naming that customer is uploaded
    build = services.tag_members_upload(tag=tag, upload=io.BytesIO(b"external_id\nS1\nS2\n"), by=agent)
    # then the list is kept as given
    assert _members("vip") == {"S1", "S2"}
    assert build.excluded_by_consent == 0


def test_the_preview_panel_shows_the_excluded_count(client_for, agent, shanghai):
    # given S3 withdrew personalisation
    consent.consent_set(
        customer=shanghai["S3"], states={"personalisation": "withdrawn"}, source="api", by=agent
    )
    # when an agent previews the rule on the tag page
    response = client_for(agent).post(
        reverse("crm_tags:tag_preview", args=["sh"]),
        {"definition": '{"attr": "city", "op": "=", "value": "Shanghai"}'},
    )
    # then the panel counts the two kept and the one left out by consent
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="preview-matched">2<' in html
    assert "1 excluded by consent" in html


# --- channel-purpose exports -----------------------------------------------------------------------


@pytest.fixture
def reachable(agent, shanghai):
    """S1 granted e-mail, S2 withdrew it, S3 never said."""
    consent.consent_set(
        customer=shanghai["S1"], states={"marketing_email": "granted"}, source="api", by=agent
    )
    consent.consent_set(
        customer=shanghai["S2"], states={"marketing_email": "withdrawn"}, source="api", by=agent
    )
    return shanghai


def _csv_ids(content: bytes) -> list[str]:
    return [row["external_id"] for row in csv.DictReader(io.StringIO(content.decode("utf-8-sig")))]


def _streamed(response) -> bytes:  # noqa: ANN001
    return b"".join(response.streaming_content)


def test_purpose_filtered_csv_keeps_only_who_granted_it(api_for, agent, reachable):
    # when the members are exported for marketing e-mail
    response = api_for(agent).get("/api/v1/tags/sh/members/?format=csv&purpose=marketing_email")
    # then only the customer who granted it is in the file
    assert response.status_code == 200
    assert _csv_ids(_streamed(response)) == ["S1"]


def test_purpose_filtered_csv_includes_unknown_when_configured(api_for, agent, reachable, settings):
    # given unknown consent counts as reachable
    settings.CONSENT_DEFAULT_UNKNOWN = "include"
    # when the members are exported for marketing e-mail
    response = api_for(agent).get("/api/v1/tags/sh/members/?format=csv&purpose=marketing_email")
    # then who granted it and who never said are in it, who withdrew it is not
    assert _csv_ids(_streamed(response)) == ["S1", "S3"]


def test_csv_without_purpose_exports_every_member(api_for, agent, reachable):
    response = api_for(agent).get("/api/v1/tags/sh/members/?format=csv")
    assert _csv_ids(_streamed(response)) == ["S1", "S2", "S3"]


def test_the_page_csv_takes_the_purpose_too(client_for, agent, reachable):
    response = client_for(agent).get(
        reverse("crm_tags:tag_members_csv", args=["sh"]) + "?purpose=marketing_email"
    )
    assert response.status_code == 200
    assert _csv_ids(_streamed(response)) == ["S1"]


@pytest.mark.parametrize("purpose", ["personalisation", "carrier_pigeon"])
def test_a_purpose_other_than_a_channel_answers_400_naming_purpose(
    api_for, client_for, agent, reachable, purpose
):
    # when an export asks for a purpose that is not a contact channel
    api = api_for(agent).get(f"/api/v1/tags/sh/members/?format=csv&purpose={purpose}")
    page = client_for(agent).get(reverse("crm_tags:tag_members_csv", args=["sh"]) + f"?purpose={purpose}")
    # then both answer 400 naming the parameter
    assert api.status_code == 400
    assert "purpose" in api.content.decode()
    assert page.status_code == 400
    assert "purpose" in page.content.decode()
