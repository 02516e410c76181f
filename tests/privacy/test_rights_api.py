"""The person's requests over the API: who may file, list, read, approve and download, the 400/404/409
answers, and the list's fixed number of queries."""

import datetime as dt
import json

import pytest
from django.urls import reverse

from privacy.models import PrivacyRequest, UnmaskedAccess
from tests.crm_tags import factories
from tests.privacy import rights_factories as rf

pytestmark = pytest.mark.django_db

REQUESTS = "/api/v1/privacy/requests/"


@pytest.fixture
def manager_without_pii(make_user, support_team):
    return make_user("boss-nopii", role="manager", team=support_team.name, pii=False)


@pytest.fixture
def customer(db):
    person = factories.customer(external_id="API1", city="Shanghai")
    rf.history_for(person)
    return person


def _post(client, **body):
    return client.post(REQUESTS, body, format="json")


# --- filing -----------------------------------------------------------------------------------------


def test_a_manager_files_an_export_which_runs_at_once(
    api_for, manager, customer, django_capture_on_commit_callbacks
):
    # given a manager and a customer
    # when they file an export
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api_for(manager), kind="export", customer_external_id="API1")
    # then it is created running, and its job finished it
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "kind", "status"}
    assert (body["kind"], body["status"]) == ("export", "running")
    assert PrivacyRequest.objects.get(pk=body["id"]).status == "done"


def test_an_erasure_waits_for_approval(api_for, manager, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api_for(manager), kind="erase", customer_external_id="API1")
    assert response.status_code == 201
    assert response.json()["status"] == "pending_approval"
    assert PrivacyRequest.objects.get(pk=response.json()["id"]).status == "pending_approval"


@pytest.mark.parametrize("who", ["requester", "agent"])
def test_only_managers_file_requests(request, api_for, customer, who):
    response = _post(api_for(request.getfixturevalue(who)), kind="export", customer_external_id="API1")
    assert response.status_code == 403
    assert not PrivacyRequest.objects.exists()


def test_anonymous_people_file_nothing(api_for, customer):
    assert _post(api_for(None), kind="export", customer_external_id="API1").status_code in (401, 403)


def test_a_bad_kind_is_a_400_naming_the_field(api_for, manager, customer):
    response = _post(api_for(manager), kind="delete-everything", customer_external_id="API1")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "kind"


def test_a_missing_customer_is_a_400_naming_the_field(api_for, manager):
    response = _post(api_for(manager), kind="export")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["customer_external_id"]


def test_an_unknown_customer_is_a_404(api_for, manager):
    response = _post(api_for(manager), kind="erase", customer_external_id="NOBODY")
    assert response.status_code == 404
    assert not PrivacyRequest.objects.exists()


def test_filing_sets_the_due_date_and_is_audited(api_for, manager, customer, settings):
    from accounts.models import AuditEntry

    settings.PRIVACY_REQUEST_DUE_DAYS = 15
    response = _post(api_for(manager), kind="erase", customer_external_id="API1")
    req = PrivacyRequest.objects.get(pk=response.json()["id"])
    assert abs(req.due_at - req.created_at - dt.timedelta(days=15)) < dt.timedelta(seconds=5)
    entry = AuditEntry.objects.get(object_type="privacy.privacyrequest", object_id=str(req.pk))
    assert (entry.action, entry.actor, entry.changes) == ("privacy.request_file", manager, {"kind": "erase"})


# --- listing and reading ------------------------------------------------------------------------------


def test_managers_list_requests_paginated(api_for, manager, customer, django_capture_on_commit_callbacks):
    rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    response = api_for(manager).get(REQUESTS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["next"] is None
    item = body["results"][0]
    assert (item["kind"], item["status"], item["requested_by"], item["overdue"]) == (
        "erase",
        "pending_approval",
        "boss",
        False,
    )


@pytest.mark.parametrize("who", ["requester", "agent"])
def test_non_managers_may_not_list_or_read_requests(
    request, api_for, manager, customer, who, django_capture_on_commit_callbacks
):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    client = api_for(request.getfixturevalue(who))
    assert client.get(REQUESTS).status_code == 403
    assert client.get(f"{REQUESTS}{req.pk}/").status_code == 403


def test_the_list_runs_a_fixed_number_of_queries(
    api_for, manager, make_user, support_team, django_assert_num_queries, django_capture_on_commit_callbacks
):
    # given requests filed by several managers about several customers
    for n in range(2):
        filer = make_user(f"filer{n}", role="manager", team=support_team.name)
        for _m in range(3):
            rf.filed("erase", factories.customer(), filer, django_capture_on_commit_callbacks)
    client = api_for(manager)
    # when a manager lists them
    # then the queries do not grow with the rows:
    # 1-2 the person's permissions (groups, own), 3 count, 4 the page with filers and approvers joined
    with django_assert_num_queries(4):
        response = client.get(REQUESTS)
    assert response.json()["count"] == 6
    assert {item["requested_by"] for item in response.json()["results"]} == {"filer0", "filer1"}


def test_a_request_reads_with_its_report_and_no_download_for_an_erasure(
    api_for, manager, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    body = api_for(manager).get(f"{REQUESTS}{req.pk}/").json()
    assert {"id", "kind", "status", "report", "due_at", "created_at", "download_url"} <= set(body)
    assert body["download_url"] is None
    assert body["customer_external_id"] == "API1"


def test_an_unknown_request_is_a_404(api_for, manager):
    assert api_for(manager).get(f"{REQUESTS}999999/").status_code == 404


def test_a_done_export_offers_its_download_only_to_who_may_download(
    api_for, manager, manager_without_pii, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("export", customer, manager, django_capture_on_commit_callbacks)
    with_pii = api_for(manager).get(f"{REQUESTS}{req.pk}/").json()
    without = api_for(manager_without_pii).get(f"{REQUESTS}{req.pk}/").json()
    assert with_pii["status"] == "done"
    assert with_pii["download_url"] == reverse("privacy-request-download", args=[req.pk])
    assert without["download_url"] is None
    assert with_pii["report"]["events"] == 9


# --- approving ------------------------------------------------------------------------------------


def test_any_manager_approves_an_erasure_the_filer_included(
    api_for, manager, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(manager).post(f"{REQUESTS}{req.pk}/approve/")
    assert response.status_code == 200
    assert response.json() == {"id": req.pk, "kind": "erase", "status": "running"}
    req.refresh_from_db()
    assert (req.status, req.approved_by) == ("done", manager)


@pytest.mark.parametrize("who", ["requester", "agent"])
def test_non_managers_may_not_approve(
    request, api_for, manager, customer, who, django_capture_on_commit_callbacks
):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    assert api_for(request.getfixturevalue(who)).post(f"{REQUESTS}{req.pk}/approve/").status_code == 403
    req.refresh_from_db()
    assert req.status == "pending_approval"


def test_approving_an_export_or_twice_is_a_conflict(
    api_for, manager, customer, django_capture_on_commit_callbacks
):
    export = rf.filed("export", customer, manager, django_capture_on_commit_callbacks)
    erase = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    client = api_for(manager)
    assert client.post(f"{REQUESTS}{export.pk}/approve/").status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"{REQUESTS}{erase.pk}/approve/").status_code == 200
    assert client.post(f"{REQUESTS}{erase.pk}/approve/").status_code == 409


# --- downloading -----------------------------------------------------------------------------------


def test_the_export_downloads_uncached_and_the_download_is_logged(
    api_for, manager, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("export", customer, manager, django_capture_on_commit_callbacks)
    response = api_for(manager).get(f"{REQUESTS}{req.pk}/download/")
    assert response.status_code == 200
    assert "no-store" in [d.strip() for d in response["Cache-Control"].split(",")]
    assert "attachment" in response["Content-Disposition"]
    bundle = json.loads(b"".join(response.streaming_content))
    assert bundle["profile"]["external_id"] == "API1"
    logged = UnmaskedAccess.objects.get(kind="privacy_export")
    assert (logged.user, logged.customer_id, logged.rows) == (
        manager,
        customer.pk,
        sum(v for k, v in req.report.items() if k != "bytes"),
    )


@pytest.mark.parametrize("who", ["requester", "agent", "manager_without_pii"])
def test_only_managers_who_may_see_personal_data_download(
    request, api_for, manager, customer, who, django_capture_on_commit_callbacks
):
    req = rf.filed("export", customer, manager, django_capture_on_commit_callbacks)
    response = api_for(request.getfixturevalue(who)).get(f"{REQUESTS}{req.pk}/download/")
    assert response.status_code == 403
    assert not UnmaskedAccess.objects.filter(kind="privacy_export").exists()


def test_an_erasure_has_nothing_to_download(api_for, manager, customer, django_capture_on_commit_callbacks):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    assert api_for(manager).get(f"{REQUESTS}{req.pk}/download/").status_code == 404


def test_the_schema_stays_valid(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    assert "/api/v1/privacy/requests/{id}/approve/" in out.read_text()
