"""The tags and customers API: contract shapes, permissions (allow + deny), masking, lifecycle."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm_tags.models import Tag, TagBuild, TagMembership, TagMembershipChange
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

RULE = {
    "all": [
        {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 5},
        {"event": "order", "agg": "avg", "field": "amount", "op": ">=", "value": 200},
    ]
}


@pytest.fixture
def shoppers(db):
    """Three customers: only `hot` has 5 views in 30 days and an average order of 250."""
    now = timezone.now()
    hot = factories.customer(external_id="HOT", email="zhang.wei@example.com", phone="13812345678")
    cold = factories.customer(external_id="COLD")
    lukewarm = factories.customer(external_id="LUKE")
    rows = [(hot, "page_view", now - timedelta(days=d), None) for d in range(1, 6)]
    rows += [
        (hot, "order", now - timedelta(days=40), Decimal("300")),
        (hot, "order", now - timedelta(days=2), Decimal("200")),
    ]
    rows += [(lukewarm, "page_view", now - timedelta(days=d), None) for d in range(1, 6)]
    rows += [(lukewarm, "order", now - timedelta(days=3), Decimal("50"))]
    rows += [(cold, "page_view", now - timedelta(days=60), None)]
    factories.events(rows)
    return {"hot": hot, "cold": cold, "lukewarm": lukewarm}


def publish(api, slug: str, version: int, percent: int, capture) -> dict:
    with capture(execute=True):
        response = api.post(
            f"/api/v1/tags/{slug}/publish/", {"version": version, "rollout_percent": percent}, format="json"
        )
    return response


def test_agent_creates_a_tag(api_for, agent):
    response = api_for(agent).post(
        "/api/v1/tags/", {"slug": "vip", "name": "VIP", "kind": "rule", "category": "Value"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["slug"] == "vip"
    assert Tag.objects.get(slug="vip").category.name == "Value"


def test_requester_may_not_create_a_tag(api_for, requester):
    response = api_for(requester).post(
        "/api/v1/tags/", {"slug": "vip", "name": "VIP", "kind": "rule"}, format="json"
    )
    assert response.status_code == 403


def test_tag_list_is_readable_by_requesters(api_for, requester):
    factories.rule_tag("vip")
    response = api_for(requester).get("/api/v1/tags/")
    assert response.status_code == 200
    assert [t["slug"] for t in response.json()["results"]] == ["vip"]


def test_duplicate_slug_conflicts(api_for, agent):
    factories.rule_tag("vip")
    response = api_for(agent).post(
        "/api/v1/tags/", {"slug": "vip", "name": "VIP", "kind": "rule"}, format="json"
    )
    assert response.status_code == 409


def test_saving_a_version_answers_its_number(api_for, agent):
    factories.rule_tag("hp")
    response = api_for(agent).post(
        "/api/v1/tags/hp/versions/", {"definition": RULE}, format="json", HTTP_IF_MATCH='"0"'
    )
    assert response.status_code == 201
    assert response.json() == {"version": 1}


def test_invalid_rule_answers_400_with_paths(api_for, agent):
    factories.rule_tag("hp")
    bad = {
        "all": [
            {"attr": "city", "op": "=", "value": "x"},
            {"event": "order", "agg": "avg", "field": "amount", "op": "~", "value": 1},
        ]
    }
    response = api_for(agent).post(
        "/api/v1/tags/hp/versions/", {"definition": bad, "base_version": 0}, format="json"
    )
    assert response.status_code == 400
    assert {"path": "all[1].op", "message": response.json()["errors"][0]["message"]} in response.json()[
        "errors"
    ]


def test_requester_may_not_save_versions(api_for, requester):
    factories.rule_tag("hp")
    response = api_for(requester).post("/api/v1/tags/hp/versions/", {"definition": RULE}, format="json")
    assert response.status_code == 403


def test_preview_reports_counts_sample_and_diff(api_for, agent, shoppers):
    factories.rule_tag("hp")
    response = api_for(agent).post("/api/v1/tags/hp/preview/", {"definition": RULE}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["matched"], body["total"], body["enter"], body["exit"]) == (1, 3, 1, 0)
    assert body["share"] == pytest.approx(1 / 3, abs=1e-3)
    assert body["sample"] == [{"external_id": "HOT", "values": {"page_view_count_30d": 5, "order_avg": 250}}]


def test_preview_of_a_saved_version_with_as_of_in_the_past(api_for, agent, shoppers):
    factories.rule_tag("hp", RULE)
    as_of = (timezone.now() - timedelta(days=20)).isoformat()
    response = api_for(agent).post("/api/v1/tags/hp/preview/", {"version": 1, "as_of": as_of}, format="json")
    assert response.status_code == 200
    assert response.json()["matched"] == 0


def test_requester_may_not_preview(api_for, requester, shoppers):
    factories.rule_tag("hp")
    response = api_for(requester).post("/api/v1/tags/hp/preview/", {"definition": RULE}, format="json")
    assert response.status_code == 403


def test_publish_builds_membership_and_build_is_readable(
    api_for, agent, shoppers, django_capture_on_commit_callbacks
):
    factories.rule_tag("hp", RULE)
    response = publish(api_for(agent), "hp", 1, 99, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    build_id = response.json()["build_id"]
    build = api_for(agent).get(f"/api/v1/tags/hp/builds/{build_id}/").json()
    assert {k: build[k] for k in ("status", "entered", "exited", "error")} == {
        "status": "done",
        "entered": build["members"],
        "exited": 0,
        "error": "",
    }
    assert build["seconds"] is not None
    assert TagMembership.objects.filter(tag__slug="hp").count() == build["members"]


def test_full_release_needs_a_manager(api_for, agent, shoppers, django_capture_on_commit_callbacks):
    factories.rule_tag("hp", RULE)
    response = publish(api_for(agent), "hp", 1, 100, django_capture_on_commit_callbacks)
    assert response.status_code == 403


def test_manager_releases_to_everyone(api_for, manager, shoppers, django_capture_on_commit_callbacks):
    factories.rule_tag("hp", RULE)
    response = publish(api_for(manager), "hp", 1, 100, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    members = set(
        TagMembership.objects.filter(tag__slug="hp").values_list("customer__external_id", flat=True)
    )
    assert members == {"HOT"}
    change = TagMembershipChange.objects.get(tag__slug="hp")
    assert (change.change, change.version, change.customer.external_id) == ("entered", 1, "HOT")


def test_rollback_republishes_an_older_version(
    api_for, manager, shoppers, django_capture_on_commit_callbacks
):
    tag = factories.rule_tag("hp", RULE)
    factories.version(tag, {"event": "page_view", "agg": "count", "op": ">=", "value": 1})
    publish(api_for(manager), "hp", 2, 100, django_capture_on_commit_callbacks)
    assert TagMembership.objects.filter(tag=tag).count() == 3
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(manager).post("/api/v1/tags/hp/rollback/", {"version": 1}, format="json")
    assert response.status_code == 202
    tag.refresh_from_db()
    assert tag.current_version.number == 1
    assert set(TagMembership.objects.filter(tag=tag).values_list("customer__external_id", flat=True)) == {
        "HOT"
    }
    exited = TagMembershipChange.objects.filter(tag=tag, change="exited", version=1)
    assert set(exited.values_list("customer__external_id", flat=True)) == {"COLD", "LUKE"}


def test_requester_may_not_publish(api_for, requester, shoppers):
    factories.rule_tag("hp", RULE)
    response = api_for(requester).post(
        "/api/v1/tags/hp/publish/", {"version": 1, "rollout_percent": 10}, format="json"
    )
    assert response.status_code == 403


def test_members_are_paginated_and_masked_for_agents(
    api_for, agent, manager, shoppers, django_capture_on_commit_callbacks
):
    factories.rule_tag("hp", RULE)
    publish(api_for(manager), "hp", 1, 100, django_capture_on_commit_callbacks)
    body = api_for(agent).get("/api/v1/tags/hp/members/").json()
    assert body["count"] == 1
    assert (body["results"][0]["email"], body["results"][0]["phone"]) == ("z***@example.com", "138****5678")


def test_members_unmasked_for_view_pii(api_for, manager, shoppers, django_capture_on_commit_callbacks):
    factories.rule_tag("hp", RULE)
    publish(api_for(manager), "hp", 1, 100, django_capture_on_commit_callbacks)
    body = api_for(manager).get("/api/v1/tags/hp/members/").json()
    assert body["results"][0]["email"] == "zhang.wei@example.com"


def test_members_csv_is_masked_without_pii(
    api_for, agent, manager, shoppers, django_capture_on_commit_callbacks
):
    factories.rule_tag("hp", RULE)
    publish(api_for(manager), "hp", 1, 100, django_capture_on_commit_callbacks)
    response = api_for(agent).get("/api/v1/tags/hp/members/?format=csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0] == "external_id,name,email,phone,city,since"
    assert "z***@example.com" in text and "zhang.wei@example.com" not in text


def test_customers_filtered_by_tag_and_masked(
    api_for, requester, manager, shoppers, django_capture_on_commit_callbacks
):
    factories.rule_tag("hp", RULE)
    publish(api_for(manager), "hp", 1, 100, django_capture_on_commit_callbacks)
    body = api_for(requester).get("/api/v1/customers/?tag=hp").json()
    assert [c["external_id"] for c in body["results"]] == ["HOT"]
    assert body["results"][0]["email"] == "z***@example.com"


def test_customer_detail_lists_tags_with_since(
    api_for, manager, shoppers, django_capture_on_commit_callbacks
):
    factories.rule_tag("hp", RULE)
    publish(api_for(manager), "hp", 1, 100, django_capture_on_commit_callbacks)
    body = api_for(manager).get("/api/v1/customers/HOT/").json()
    assert body["phone"] == "13812345678"
    assert [t["slug"] for t in body["tags"]] == ["hp"] and body["tags"][0]["since"]


def test_unknown_customer_is_404(api_for, agent):
    assert api_for(agent).get("/api/v1/customers/NOPE/").status_code == 404


def test_anonymous_is_refused(api_for):
    assert api_for(None).get("/api/v1/customers/").status_code in (401, 403)


def test_build_of_another_tag_is_404(api_for, agent, shoppers):
    factories.rule_tag("a", RULE)
    other = factories.rule_tag("b", RULE)
    build = TagBuild.objects.create(tag=other)
    assert api_for(agent).get(f"/api/v1/tags/a/builds/{build.pk}/").status_code == 404


def test_manual_tag_upload_sets_members(api_for, agent, shoppers):
    Tag.objects.create(slug="list", name="List", kind="manual")
    upload = io.BytesIO(b"external_id\nHOT\nCOLD\n")
    upload.name = "m.csv"
    response = api_for(agent).post("/api/v1/tags/list/members/upload/", {"file": upload}, format="multipart")
    assert response.status_code == 201
    assert response.json()["members"] == 2


def test_manual_upload_with_unknown_id_is_rejected(api_for, agent, shoppers):
    Tag.objects.create(slug="list", name="List", kind="manual")
    upload = io.BytesIO(b"external_id\nHOT\nGHOST\n")
    upload.name = "m.csv"
    response = api_for(agent).post("/api/v1/tags/list/members/upload/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 3, "column": "external_id", "message": "Unknown customer GHOST."}
    ]


def _file(text: str) -> io.BytesIO:
    upload = io.BytesIO(text.encode())
    upload.name = "data.csv"
    return upload


CUSTOMERS = "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\nN1,Nia,,,Shanghai,f,,,web\n"


def test_agent_imports_customers_and_events_by_api(api_for, agent, django_capture_on_commit_callbacks):
    api = api_for(agent)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/customers/import/", {"file": _file(CUSTOMERS)}, format="multipart")
    assert response.status_code == 201
    assert response.json()["created"] == 1
    events = "customer_external_id,event_type,occurred_at,amount,channel\nN1,order,2026-03-01,10,web\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/events/import/", {"file": _file(events)}, format="multipart")
    assert response.status_code == 201
    assert response.json()["rows"] == 1


def test_a_customer_import_says_what_it_changed_and_what_it_found_as_it_was(api_for, agent):
    api = api_for(agent)
    api.post("/api/v1/customers/import/", {"file": _file(CUSTOMERS)}, format="multipart")
    again = api.post("/api/v1/customers/import/", {"file": _file(CUSTOMERS)}, format="multipart").json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1)
    moved = CUSTOMERS.replace("Shanghai", "Hangzhou")
    changed = api.post("/api/v1/customers/import/", {"file": _file(moved)}, format="multipart").json()
    assert (changed["created"], changed["updated"], changed["unchanged"]) == (0, 1, 0)


def test_bad_event_file_answers_400_with_rows_and_imports_nothing(api_for, agent):
    api_for(agent).post("/api/v1/customers/import/", {"file": _file(CUSTOMERS)}, format="multipart")
    events = "customer_external_id,event_type,occurred_at,amount,channel\nN1,order,2026-03-01,10,web\nN1,order,nope,x,web\n"
    response = api_for(agent).post("/api/v1/events/import/", {"file": _file(events)}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 3, "column": "occurred_at", "message": "Not an ISO 8601 date or date-time."},
        {"row": 3, "column": "amount", "message": "Not a number."},
    ]
    from crm_tags.models import Event

    assert Event.objects.count() == 0


def test_requester_may_not_import(api_for, requester):
    response = api_for(requester).post(
        "/api/v1/customers/import/", {"file": _file(CUSTOMERS)}, format="multipart"
    )
    assert response.status_code == 403


def test_cancel_of_a_preview_that_is_not_running_answers_false(api_for, agent):
    factories.rule_tag("hp")
    response = api_for(agent).post("/api/v1/tags/hp/preview/cancel/", {"preview_id": "nope"}, format="json")
    assert (response.status_code, response.json()) == (200, {"cancelled": False})


def test_requester_may_not_cancel_previews(api_for, requester):
    factories.rule_tag("hp")
    response = api_for(requester).post("/api/v1/tags/hp/preview/cancel/", {"preview_id": "x"}, format="json")
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_running_preview_is_cancelled_through_its_endpoint(api_for, agent, monkeypatch):
    # given a preview whose statement sleeps 20 s (one matching customer), started in another thread
    import threading
    import time

    from django.db import connection

    from crm_tags import selectors

    tag = factories.rule_tag("slow")
    member = factories.customer(city="Shanghai")
    TagMembership.objects.create(tag=tag, customer=member, since=timezone.now())
    original = selectors.compile_rule

    def slow(*args, **kwargs):
        compiled = original(*args, **kwargs)
        if not kwargs.get("only_ids"):
            compiled.sql += " AND pg_sleep(20) IS NOT NULL"
        return compiled

    monkeypatch.setattr(selectors, "compile_rule", slow)
    outcome: dict = {}

    def run() -> None:
        try:
            started = time.monotonic()
            outcome["response"] = api_for(agent).post(
                "/api/v1/tags/slow/preview/",
                {"definition": {"attr": "city", "op": "=", "value": "Shanghai"}, "preview_id": "p1"},
                format="json",
            )
            outcome["seconds"] = time.monotonic() - started
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        running = False
        while not running and time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
                    "AND pid <> pg_backend_pid() AND datname = current_database()",
                    ["%pg_sleep(20)%"],
                )
                running = cursor.fetchone()[0] > 0
            time.sleep(0.05)
        assert running
        # when its requester cancels it through the endpoint
        response = api_for(agent).post(
            "/api/v1/tags/slow/preview/cancel/", {"preview_id": "p1"}, format="json"
        )
    finally:
        thread.join(30)
    # then the cancel is confirmed, the preview ends at once as cancelled (409), and nothing changed
    assert (response.status_code, response.json()) == (200, {"cancelled": True})
    assert outcome["response"].status_code == 409
    assert outcome["seconds"] < 15
    assert list(TagMembership.objects.filter(tag=tag).values_list("customer_id", flat=True)) == [member.pk]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state = 'active' "
            "AND pid <> pg_backend_pid() AND datname = current_database()",
            ["%pg_sleep(20)%"],
        )
        assert cursor.fetchone()[0] == 0
