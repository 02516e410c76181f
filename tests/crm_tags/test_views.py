"""Customer and tag pages: allow and deny per role, masking, htmx partials, query counts."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from crm_tags.models import Customer, Tag, TagBuild, TagMembership
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

RULE = {"all": [{"event": "order", "agg": "count", "op": ">=", "value": 1}]}


@pytest.fixture
def buyer(db):
    c = factories.customer(
        external_id="BUY", email="zhang.wei@example.com", phone="13812345678", attributes={"tier": "gold"}
    )
    factories.events([(c, "order", timezone.now() - timedelta(days=1), Decimal("99.50"))])
    return c


@pytest.fixture
def published(buyer, manager, django_capture_on_commit_callbacks):
    from crm_tags import services

    tag = factories.rule_tag("buyers", RULE, category="Behaviour")
    with django_capture_on_commit_callbacks(execute=True):
        services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=manager)
    return tag


def test_customer_list_masks_contact_for_requesters(client_for, requester, buyer):
    response = client_for(requester).get(reverse("crm_tags:index"))
    assert response.status_code == 200
    assert b"z***@example.com" in response.content and b"138****5678" in response.content
    assert b"zhang.wei@example.com" not in response.content


def test_customer_list_unmasked_with_view_pii(client_for, manager, buyer):
    response = client_for(manager).get(reverse("crm_tags:index"))
    assert b"zhang.wei@example.com" in response.content


def test_customer_list_filters_by_tag(client_for, agent, published):
    factories.customer(external_id="NOBUY")
    response = client_for(agent).get(reverse("crm_tags:index"), {"tag": "buyers"})
    assert b"BUY" in response.content and b"NOBUY" not in response.content


def test_customer_search_htmx_gets_the_partial(client_for, agent, buyer):
    factories.customer(external_id="OTHER", name="Somebody")
    response = client_for(agent).get(reverse("crm_tags:index"), {"q": "BUY"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in response.content
    assert b"BUY" in response.content and b"OTHER" not in response.content


def test_customer_list_empty_state(client_for, agent):
    response = client_for(agent).get(reverse("crm_tags:index"))
    assert b"No customers match." in response.content


def test_customer_page_shows_masked_attributes_tags_and_timeline(client_for, requester, published):
    response = client_for(requester).get(reverse("crm_tags:customer_detail", args=["BUY"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "z***@example.com" in body and "zhang.wei" not in body
    assert "Buyers" in body and "since" in body
    assert "99.50" in body and "gold" in body


def test_unknown_customer_page_is_404(client_for, agent):
    assert client_for(agent).get(reverse("crm_tags:customer_detail", args=["NOPE"])).status_code == 404


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("crm_tags:tag_list"))
    assert response.status_code == 302


def test_tag_page_renders_builder_for_agents(client_for, agent, published):
    response = client_for(agent).get(reverse("crm_tags:tag_detail", args=["buyers"]))
    assert response.status_code == 200
    assert b'id="rule-builder"' in response.content and b'id="release-form"' in response.content
    assert b"crm_tags/rule_builder.js" in response.content


def test_tag_page_is_read_only_for_requesters(client_for, requester, published):
    response = client_for(requester).get(reverse("crm_tags:tag_detail", args=["buyers"]))
    assert response.status_code == 200
    assert b'id="release-form"' not in response.content and b'data-readonly="1"' in response.content


def test_agent_creates_a_tag_on_the_page(client_for, agent):
    response = client_for(agent).post(
        reverse("crm_tags:tag_create"),
        {"slug": "vip", "name": "VIP", "kind": "rule", "category": "Value", "schedule": "daily"},
    )
    assert response.status_code == 302
    assert Tag.objects.get(slug="vip").schedule == "daily"


def test_requester_may_not_create_a_tag_on_the_page(client_for, requester):
    response = client_for(requester).post(
        reverse("crm_tags:tag_create"), {"slug": "vip", "name": "VIP", "kind": "rule", "schedule": "daily"}
    )
    assert response.status_code == 403


def test_saving_an_invalid_rule_shows_paths(client_for, agent, published):
    bad = {"all": [{"event": "order", "agg": "count", "op": "~", "value": 1}]}
    response = client_for(agent).post(
        reverse("crm_tags:tag_version_save", args=["buyers"]), {"definition": json.dumps(bad), "version": "1"}
    )
    assert response.status_code == 422
    assert b"all[0].op" in response.content


def test_saving_a_rule_on_the_page_creates_a_version(client_for, agent, published):
    response = client_for(agent).post(
        reverse("crm_tags:tag_version_save", args=["buyers"]),
        {"definition": json.dumps(RULE), "version": "1"},
    )
    assert response.status_code == 302
    assert published.versions.count() == 2


def test_preview_partial_shows_counts(client_for, agent, published):
    response = client_for(agent).post(
        reverse("crm_tags:tag_preview", args=["buyers"]),
        {"definition": json.dumps(RULE)},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b'id="preview-matched">1<' in response.content


def test_requester_may_not_preview_on_the_page(client_for, requester, published):
    response = client_for(requester).post(
        reverse("crm_tags:tag_preview", args=["buyers"]), {"definition": json.dumps(RULE)}
    )
    assert response.status_code == 403


def test_agent_cannot_release_to_everyone_on_the_page(
    client_for, agent, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(agent).post(
            reverse("crm_tags:tag_publish", args=["buyers"]),
            {"version": 1, "rollout_percent": 100},
            follow=True,
        )
    assert b"Only a manager" in response.content
    assert TagBuild.objects.filter(tag=published).count() == 1


def test_agent_gray_release_on_the_page(client_for, agent, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(agent).post(
            reverse("crm_tags:tag_publish", args=["buyers"]), {"version": 1, "rollout_percent": 10}
        )
    assert response.status_code == 302
    published.refresh_from_db()
    assert published.rollout_percent == 10


def test_members_csv_export_is_masked_without_pii(client_for, agent, published):
    response = client_for(agent).get(reverse("crm_tags:tag_members_csv", args=["buyers"]))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "z***@example.com" in text and "zhang.wei" not in text


def test_members_csv_export_unmasked_with_pii(client_for, manager, published):
    response = client_for(manager).get(reverse("crm_tags:tag_members_csv", args=["buyers"]))
    assert "zhang.wei@example.com" in b"".join(response.streaming_content).decode("utf-8-sig")


def test_member_page_lists_members(client_for, requester, published):
    response = client_for(requester).get(reverse("crm_tags:tag_members", args=["buyers"]))
    assert (
        response.status_code == 200 and b"BUY" in response.content and b"z***@example.com" in response.content
    )


def test_unknown_tag_is_404(client_for, agent):
    assert client_for(agent).get(reverse("crm_tags:tag_detail", args=["nope"])).status_code == 404


def test_builds_partial(client_for, agent, published):
    response = client_for(agent).get(reverse("crm_tags:tag_builds", args=["buyers"]))
    assert response.status_code == 200 and b'id="builds-table"' in response.content


# --- query counts ----------------------------------------------------------------------------------


@pytest.fixture
def many(published):
    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [Customer(external_id=f"M{i:03d}", email=f"m{i}@example.com") for i in range(30)]
    )
    TagMembership.objects.bulk_create(
        [TagMembership(tag=published, customer=c, since=now) for c in customers]
    )


def test_customer_list_query_count(client_for, agent, many, django_assert_max_num_queries):
    client = client_for(agent)
    # session+user, perms (2), nav unread, tags for the filter, count, page
    with django_assert_max_num_queries(10):
        assert client.get(reverse("crm_tags:index")).status_code == 200


def test_member_page_query_count(client_for, agent, many, django_assert_max_num_queries):
    client = client_for(agent)
    # session+user, perms, nav, tag, tree (tags + categories), count, page with customers
    with django_assert_max_num_queries(12):
        assert client.get(reverse("crm_tags:tag_members", args=["buyers"])).status_code == 200


def test_tag_page_query_count(client_for, agent, many, django_assert_max_num_queries):
    client = client_for(agent)
    with django_assert_max_num_queries(16):
        assert client.get(reverse("crm_tags:tag_detail", args=["buyers"])).status_code == 200


def test_customer_api_list_query_count(api_for, agent, many, django_assert_max_num_queries):
    api = api_for(agent)
    # perms, count, page
    with django_assert_max_num_queries(5):
        assert api.get("/api/v1/customers/?tag=buyers").json()["count"] == 31


def test_members_api_query_count(api_for, agent, many, django_assert_max_num_queries):
    api = api_for(agent)
    with django_assert_max_num_queries(6):
        assert api.get("/api/v1/tags/buyers/members/").json()["count"] == 31


def test_tag_api_list_query_count(api_for, agent, many, django_assert_max_num_queries):
    api = api_for(agent)
    with django_assert_max_num_queries(4):
        assert api.get("/api/v1/tags/").json()["count"] == 1


def test_build_api_list_query_count(api_for, agent, many, django_assert_max_num_queries):
    api = api_for(agent)
    with django_assert_max_num_queries(5):
        assert api.get("/api/v1/tags/buyers/builds/").json()["count"] == 1


@pytest.mark.django_db
def test_customer_list_filters_by_signup_month(client_for, agent):
    import datetime as dt

    from crm_tags.models import Customer

    zone = dt.timezone(dt.timedelta(hours=8))
    Customer.objects.create(external_id="OCT-1", signup_at=dt.datetime(2026, 10, 31, 23, 30, tzinfo=zone))
    Customer.objects.create(external_id="NOV-1", signup_at=dt.datetime(2026, 11, 1, 0, 30, tzinfo=zone))
    html = client_for(agent).get("/customers/", {"signup_month": "2026-10"}).content.decode()
    assert "OCT-1" in html and "NOV-1" not in html
