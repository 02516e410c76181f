"""A report job says where its rows were read and how old they are (issue 22): `data_as_of`,
`data_source`, `replica_lag_seconds` on the job, in the API (with `data_note`) and on the reports page.

Without a replica (here) every job reads the primary; the replica's side is in
tests/scaling/test_replica_report_exports.py, against a real standby."""

import datetime as dt
import re
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics import services
from analytics.filters import viewer_time_zone
from analytics.models import ReportJob
from config import db_router
from tests.analytics.factories import at, customer_make
from tests.conftest import in_english

pytestmark = pytest.mark.django_db

BEHIND = re.compile(r"^as of \d\d:\d\d:\d\d, 3 s behind$")


def _job(owner, kind: str = "customers", params: dict | None = None, **fields) -> ReportJob:
    params = params or {}
    key = services.report_dedupe_key(owner=owner, kind=kind, params=params, file_format="csv")
    return ReportJob.objects.create(owner=owner, kind=kind, params=params, dedupe_key=key, **fields)


def _done_on_the_replica(owner, as_of: dt.datetime) -> ReportJob:
    return _job(
        owner,
        status="done",
        data_as_of=as_of,
        data_source="replica",
        replica_lag_seconds=3.4,
        finished_at=as_of + dt.timedelta(seconds=5),
    )


def test_a_job_without_a_replica_records_that_it_read_the_primary(analyst):
    # given no replica configured, and a customer to export
    assert not db_router.replica_configured()
    customer_make("c-1", signup_at=at(2))
    job = _job(analyst)

    # when the job runs
    job = services.report_job_run(job_id=job.pk)

    # then it says it read live data from the primary, as of a moment while it ran
    assert job.status == "done", job.error
    assert job.data_source == "primary"
    assert job.replica_lag_seconds is None
    assert job.started_at <= job.data_as_of <= job.finished_at


def test_a_failed_job_records_no_data_source(analyst):
    job = _job(analyst, kind="tickets", params={"from": "not-a-date"})

    job = services.report_job_run(job_id=job.pk)

    assert job.status == "failed"
    assert (job.data_source, job.data_as_of, job.replica_lag_seconds) == ("", None, None)


def test_the_api_says_a_primary_job_read_live_data(api_for, analyst):
    in_english(analyst)
    customer_make("c-1", signup_at=at(2))
    job = services.report_job_run(job_id=_job(analyst).pk)

    answer = api_for(analyst).get(f"/api/v1/reports/{job.pk}/").json()

    assert answer["data_source"] == "primary"
    assert answer["replica_lag_seconds"] is None
    assert answer["data_note"] == "live data from the primary"
    assert parse_datetime(answer["data_as_of"]) == job.data_as_of


def test_the_api_says_how_far_behind_a_replica_job_was(api_for, analyst):
    in_english(analyst)
    job = _done_on_the_replica(analyst, timezone.now() - dt.timedelta(minutes=3))

    answer = api_for(analyst).get(f"/api/v1/reports/{job.pk}/").json()

    assert answer["data_source"] == "replica"
    assert answer["replica_lag_seconds"] == 3.4
    assert BEHIND.match(answer["data_note"]), answer["data_note"]


def test_the_api_has_no_data_age_before_a_job_is_done(api_for, analyst):
    job = _job(analyst, status="running")

    answer = api_for(analyst).get(f"/api/v1/reports/{job.pk}/").json()

    assert answer["data_as_of"] is None
    assert answer["data_source"] is None
    assert answer["replica_lag_seconds"] is None
    assert answer["data_note"] is None


def test_the_reports_page_says_how_old_each_reports_data_is(client_for, analyst):
    # given a report read from a replica 3.4 s behind, and one read from the primary
    in_english(analyst)
    as_of = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    replica_job = _done_on_the_replica(analyst, as_of)
    primary_job = _job(analyst, status="done", data_as_of=as_of, data_source="primary")

    html = client_for(analyst).get(reverse("analytics:reports")).content.decode()

    # then each row says so, the replica's in the viewer's time zone
    local = as_of.astimezone(zoneinfo.ZoneInfo(viewer_time_zone(analyst))).strftime("%Y-%m-%d %H:%M:%S")
    replica_row = html.split(f'id="report-{replica_job.pk}"')[1].split("</tr>")[0]
    primary_row = html.split(f'id="report-{primary_job.pk}"')[1].split("</tr>")[0]
    assert f"as of {local} (3 s behind)" in replica_row
    assert "live data from the primary" in primary_row
    assert "behind" not in primary_row


def test_a_running_job_says_nothing_about_its_data_yet(client_for, analyst):
    in_english(analyst)
    job = _job(analyst, status="running", progress=10)

    html = client_for(analyst).get(reverse("analytics:report_progress", args=[job.pk])).content.decode()

    assert "data-job-data" not in html
    assert "live data" not in html and "behind" not in html
