"""The analytics API: dashboard figures (allow, deny, team scope, validation) and report jobs."""

import re

import pytest
from django.core.files.base import ContentFile

from analytics.models import ReportJob
from tests.analytics.factories import at, ticket_make

pytestmark = pytest.mark.django_db

DASHBOARDS = ["support", "marketing", "customers"]


@pytest.mark.parametrize("name", DASHBOARDS)
def test_manager_gets_every_chart_and_as_of(api_for, manager, name):
    response = api_for(manager).get(f"/api/v1/analytics/{name}/", {"from": "2026-11-01", "to": "2026-11-30"})
    assert response.status_code == 200
    body = response.json()
    assert body["as_of"]
    assert body["filters"]["from"] == "2026-11-01"
    assert "kpis" in body["charts"] and all(
        "series" in c["data"] or "tiles" in c["data"] or "z" in c["data"] for c in body["charts"].values()
    )


@pytest.mark.parametrize("name", DASHBOARDS)
def test_anonymous_is_refused(api_for, name):
    assert api_for(None).get(f"/api/v1/analytics/{name}/").status_code in (401, 403)


def test_agent_without_team_scope_on_customers_is_refused(api_for, agent):
    response = api_for(agent).get("/api/v1/analytics/customers/")
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"


def test_requester_is_refused_the_customers_dashboard(api_for, requester):
    assert api_for(requester).get("/api/v1/analytics/customers/").status_code == 403


def test_requester_gets_support_figures_of_their_own_team_only(api_for, requester, other_requester):
    ticket_make(requester=requester, created_at=at(2, 4))
    ticket_make(requester=other_requester, created_at=at(2, 4))
    ticket_make(requester=other_requester, created_at=at(3, 4))
    # even when asking for the other team
    response = api_for(requester).get(
        "/api/v1/analytics/support/",
        {"from": "2026-11-01", "to": "2026-11-30", "team": other_requester.team_id},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["filters"]["team"] == requester.team_id
    tiles = {t["key"]: t["value"] for t in body["charts"]["kpis"]["data"]["tiles"]}
    assert tiles["opened"] == 1


def test_manager_can_filter_by_team(api_for, manager, requester, other_requester):
    ticket_make(requester=requester, created_at=at(2, 4))
    ticket_make(requester=other_requester, created_at=at(2, 4))
    response = api_for(manager).get(
        "/api/v1/analytics/support/",
        {"from": "2026-11-01", "to": "2026-11-30", "team": other_requester.team_id},
    )
    tiles = {t["key"]: t["value"] for t in response.json()["charts"]["kpis"]["data"]["tiles"]}
    assert tiles["opened"] == 1


def test_invalid_filters_answer_400_in_the_shared_error_shape(api_for, manager):
    response = api_for(manager).get("/api/v1/analytics/support/", {"from": "2026-11-30", "to": "2026-11-01"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "to"


def test_answers_come_from_the_cache_until_refreshed(api_for, manager, requester):
    client = api_for(manager)
    params = {"from": "2026-11-01", "to": "2026-11-30"}
    first = client.get("/api/v1/analytics/support/", params).json()
    ticket_make(requester=requester, created_at=at(2, 4))
    cached = client.get("/api/v1/analytics/support/", params).json()
    fresh = client.get("/api/v1/analytics/support/", {**params, "refresh": "1"}).json()

    def opened(body):
        return next(t["value"] for t in body["charts"]["kpis"]["data"]["tiles"] if t["key"] == "opened")

    assert cached["as_of"] == first["as_of"] and opened(cached) == 0
    assert cached["charts"]["kpis"]["cached"] is True
    assert opened(fresh) == 1


def test_stale_campaign_metrics_are_flagged(api_for, manager):
    body = api_for(manager).get("/api/v1/analytics/marketing/").json()
    assert any("campaign metrics" in w for w in body["warnings"])


# Report jobs ------------------------------------------------------------------------------


def test_post_report_answers_202_with_an_id_and_queues(api_for, analyst, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_for(analyst).post(
            "/api/v1/reports/", {"kind": "tickets", "params": {}, "format": "csv"}, format="json"
        )
    assert response.status_code == 202
    job = ReportJob.objects.get(pk=response.json()["id"])
    assert job.status == "queued"
    assert len(callbacks) == 1
    state = api_for(analyst).get(f"/api/v1/reports/{job.pk}/").json()
    assert (state["status"], state["progress"], state["rows"], state["download_url"], state["error"]) == (
        "queued",
        0,
        0,
        None,
        "",
    )


def test_the_same_report_while_queued_is_joined(api_for, analyst, django_capture_on_commit_callbacks):
    payload = {"kind": "tickets", "params": {"from": "2026-11-01", "channel": "WEB"}, "format": "csv"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = api_for(analyst).post("/api/v1/reports/", payload, format="json").json()
        second = (
            api_for(analyst)
            .post(
                "/api/v1/reports/",
                {**payload, "params": {"channel": "web", "from": "2026-11-01"}},
                format="json",
            )
            .json()
        )
    assert first["id"] == second["id"]
    assert second["joined"] is True
    assert len(callbacks) == 1
    assert ReportJob.objects.count() == 1


def test_a_running_report_is_joined_too(api_for, analyst, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = api_for(analyst).post("/api/v1/reports/", {"kind": "customers"}, format="json").json()
    ReportJob.objects.filter(pk=first["id"]).update(status="running")
    with django_capture_on_commit_callbacks(execute=False):
        second = api_for(analyst).post("/api/v1/reports/", {"kind": "customers"}, format="json").json()
    assert second["id"] == first["id"]


def test_a_different_format_is_a_different_job(api_for, analyst, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        csv_job = api_for(analyst).post("/api/v1/reports/", {"kind": "customers"}, format="json").json()
        xlsx_job = (
            api_for(analyst)
            .post("/api/v1/reports/", {"kind": "customers", "format": "xlsx"}, format="json")
            .json()
        )
    assert csv_job["id"] != xlsx_job["id"]


def test_a_finished_report_is_not_joined(api_for, analyst, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = api_for(analyst).post("/api/v1/reports/", {"kind": "customers"}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        second = api_for(analyst).post("/api/v1/reports/", {"kind": "customers"}, format="json").json()
    assert ReportJob.objects.get(pk=first["id"]).status == "done"
    assert first["id"] != second["id"]


def test_report_runs_to_done_with_a_download_for_its_owner(
    api_for, analyst, requester, django_capture_on_commit_callbacks
):
    ticket_make(requester=requester, created_at=at(2, 4), title='=HYPERLINK("x")')
    with django_capture_on_commit_callbacks(execute=True):
        job_id = api_for(analyst).post("/api/v1/reports/", {"kind": "tickets"}, format="json").json()["id"]
    state = api_for(analyst).get(f"/api/v1/reports/{job_id}/").json()
    assert (state["status"], state["progress"], state["rows"]) == ("done", 100, 1)
    download = api_for(analyst).get(state["download_url"])
    assert download.status_code == 200
    text = b"".join(download.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0].startswith("key,title,type")
    assert "'=HYPERLINK" in text  # formula neutralised


def test_someone_elses_report_is_404(api_for, analyst, manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job_id = api_for(analyst).post("/api/v1/reports/", {"kind": "customers"}, format="json").json()["id"]
    assert api_for(manager).get(f"/api/v1/reports/{job_id}/").status_code == 404
    assert api_for(manager).get(f"/api/v1/reports/{job_id}/download/").status_code == 404


def test_download_before_done_is_404(api_for, analyst, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job_id = api_for(analyst).post("/api/v1/reports/", {"kind": "customers"}, format="json").json()["id"]
    assert api_for(analyst).get(f"/api/v1/reports/{job_id}/download/").status_code == 404


def test_requester_may_not_start_reports(api_for, requester):
    response = api_for(requester).post("/api/v1/reports/", {"kind": "customers"}, format="json")
    assert response.status_code == 403


def test_unknown_kind_and_bad_params_are_400(api_for, analyst):
    bad_kind = api_for(analyst).post("/api/v1/reports/", {"kind": "salaries"}, format="json")
    bad_date = api_for(analyst).post(
        "/api/v1/reports/", {"kind": "tickets", "params": {"from": "soon"}}, format="json"
    )
    assert bad_kind.status_code == 400 and bad_kind.json()["errors"][0]["field"] == "kind"
    assert bad_date.status_code == 400 and bad_date.json()["errors"][0]["field"].startswith("params")


def test_list_of_my_reports_in_a_bounded_number_of_queries(
    api_for, analyst, manager, django_assert_max_num_queries
):
    for kind in ("tickets", "customers", "tag_members"):
        ReportJob.objects.create(
            owner=analyst,
            kind=kind,
            dedupe_key=kind,
            status="done",
            file=ContentFile(b"x", name=f"{kind}.csv").name,
        )
    ReportJob.objects.create(owner=manager, kind="tickets", dedupe_key="m")
    client = api_for(analyst)
    # session/auth (force_authenticate: none), permission check (groups), count, page
    with django_assert_max_num_queries(4):
        response = client.get("/api/v1/reports/")
    assert response.json()["count"] == 3


# Quotas and cancel (issue 16, item 7) -------------------------------------------------------------


def _start(client, kind: str, file_format: str = "csv"):
    return client.post("/api/v1/reports/", {"kind": kind, "format": file_format}, format="json")


def test_a_fourth_report_in_progress_is_429_naming_the_others(
    api_for, analyst, django_capture_on_commit_callbacks
):
    # given three reports of the analyst in progress (queued: no worker runs them here)
    client = api_for(analyst)
    with django_capture_on_commit_callbacks(execute=False):
        started = [_start(client, kind).json()["id"] for kind in ("customers", "tickets", "tag_members")]

        # when a fourth is asked for
        response = _start(client, "sla_breaches")

    # then it is refused with 429, the three named in the message and listed with their cancel links
    assert response.status_code == 429
    assert response["Retry-After"] == "30"
    body = response.json()
    assert body["limit"] == 3 and body["errors"][0]["code"] == "report_quota"
    assert [job["id"] for job in body["active"]] == started
    assert [job["cancel_url"] for job in body["active"]] == [
        f"/api/v1/reports/{pk}/cancel/" for pk in started
    ]
    assert all(re.search(rf"#{pk}\D", body["detail"]) for pk in started)
    assert ReportJob.objects.filter(owner=analyst).count() == 3


def test_cancel_a_report_then_start_another(api_for, analyst, django_capture_on_commit_callbacks):
    # given three reports in progress
    client = api_for(analyst)
    with django_capture_on_commit_callbacks(execute=False):
        first = _start(client, "customers").json()["id"]
        _start(client, "tickets")
        _start(client, "tag_members")

        # when the owner cancels one
        response = client.post(f"/api/v1/reports/{first}/cancel/")

        # then it is cancelled, and a new report may start
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["cancel_url"]) == ("cancelled", None)
        assert _start(client, "sla_breaches").status_code == 202


def test_cancelling_an_ended_report_is_409_with_its_state(api_for, analyst):
    job = ReportJob.objects.create(owner=analyst, kind="customers", dedupe_key="k", status="done")
    response = api_for(analyst).post(f"/api/v1/reports/{job.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["job"]["status"] == "done"
    assert response.json()["errors"][0]["code"] == "report_ended"
    assert ReportJob.objects.get(pk=job.pk).status == "done"


def test_someone_elses_report_cannot_be_cancelled(api_for, analyst, manager):
    job = ReportJob.objects.create(owner=analyst, kind="customers", dedupe_key="k")
    assert api_for(manager).post(f"/api/v1/reports/{job.pk}/cancel/").status_code == 404
    assert api_for(None).post(f"/api/v1/reports/{job.pk}/cancel/").status_code in (401, 403)
    assert ReportJob.objects.get(pk=job.pk).status == "queued"


def test_cancel_in_a_bounded_number_of_queries(api_for, analyst, django_assert_max_num_queries):
    job = ReportJob.objects.create(owner=analyst, kind="customers", dedupe_key="k", status="running")
    client = api_for(analyst)
    # permissions (groups, user permissions), the job, savepoint, the job locked, its update, the audit
    # entry, release savepoint
    with django_assert_max_num_queries(8):
        response = client.post(f"/api/v1/reports/{job.pk}/cancel/")
    assert response.status_code == 200


def test_the_schema_documents_the_quota_and_cancel():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    start = schema["paths"]["/api/v1/reports/"]["post"]["responses"]
    cancel = schema["paths"]["/api/v1/reports/{id}/cancel/"]["post"]["responses"]
    assert start["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReportQuota")
    assert {"200", "404", "409"} <= set(cancel)
    assert cancel["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReportJobEnded")
