"""The audience's live size comes from the tags app's audience_count."""

import pytest
from django.utils import timezone

from campaigns import selectors
from crm_tags.models import Tag, TagMembership
from tests.campaigns.factories import campaign_make
from tests.crm_tags import factories as tag_factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def tags():
    """vip: c0..c5; churned: c4..c7."""
    customers = [tag_factories.customer(external_id=f"A{i}") for i in range(8)]
    vip = Tag.objects.create(slug="vip", name="VIP", kind=Tag.Kind.MANUAL)
    churned = Tag.objects.create(slug="churned", name="Churned", kind=Tag.Kind.MANUAL)
    now = timezone.now()
    TagMembership.objects.bulk_create(
        [TagMembership(tag=vip, customer=c, since=now) for c in customers[:6]]
        + [TagMembership(tag=churned, customer=c, since=now) for c in customers[4:]]
    )
    return vip, churned


def test_campaign_audience_size_excludes_tags(requester, tags):
    campaign = campaign_make(owner=requester, audience_include=["vip"], audience_exclude=["churned"])
    assert selectors.campaign_audience_size(campaign=campaign) == 4


def test_all_mode_needs_every_tag(requester, tags):
    campaign = campaign_make(
        owner=requester, audience_include=["vip", "churned"], audience_include_mode="all"
    )
    assert selectors.campaign_audience_size(campaign=campaign) == 2


def test_live_size_partial_counts(client_for, requester, tags):
    html = (
        client_for(requester)
        .get("/campaigns/audience-size/?include_text=vip&exclude_text=churned")
        .content.decode()
    )
    assert 'data-audience-size="4"' in html


def test_api_rejects_unknown_tag(api_for, requester, tags):
    response = api_for(requester).post(
        "/api/v1/campaigns/",
        {
            "name": "x",
            "code": "x1",
            "budget": "1",
            "start_date": "2026-01-01",
            "end_date": "2026-01-02",
            "audience": {"include": ["nope"]},
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"].startswith("audience")


def test_api_detail_reports_the_size(api_for, requester, tags):
    campaign = campaign_make(owner=requester, audience_include=["vip"])
    assert api_for(requester).get(f"/api/v1/campaigns/{campaign.code}/").json()["audience_size"] == 6
