"""Report jobs: states queued → running → done | failed, stale jobs, masking, Excel's row limit."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from accounts.models import Notification
from analytics import reports, services
from analytics.models import ReportJob
from tests.analytics.factories import at, customer_make, membership_make, tag_make, ticket_make

pytestmark = pytest.mark.django_db


def _job(owner, kind="customers", file_format="csv", params=None, **fields):
    return ReportJob.objects.create(
        owner=owner,
        kind=kind,
        params=params or {},
        format=file_format,
        dedupe_key=f"{owner.pk}-{kind}-{file_format}-{params}",
        **fields,
    )


def _csv_rows(job):
    job.refresh_from_db()
    with job.file.open("rb") as handle:
        return list(csv.reader(io.StringIO(handle.read().decode("utf-8-sig"))))


def test_a_queued_job_runs_to_done_and_notifies_its_owner(analyst):
    customer_make("c-1", signup_at=at(2))
    job = _job(analyst)
    services.report_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.progress, job.rows, job.total_rows) == ("done", 100, 1, 1)
    assert job.started_at and job.finished_at and job.heartbeat_at
    assert Notification.objects.filter(recipient=analyst, verb="report.done").exists()


def test_a_job_that_is_not_queued_is_not_run_twice(analyst):
    job = _job(analyst, status="running")
    with pytest.raises(services.ReportJobNotRunnable):
        services.report_job_run(job_id=job.pk)


def test_a_failing_report_ends_failed_with_its_reason(analyst):
    job = _job(analyst, kind="tickets", params={"from": "not-a-date"})
    services.report_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "not-a-date" in job.error
    assert Notification.objects.filter(recipient=analyst, verb="report.failed").exists()


def test_a_running_job_without_heartbeat_is_failed_by_the_beat_task(analyst):
    # given a job whose worker last beat 40 s ago (the stale limit is 30 s) and one that beat 10 s ago
    now = timezone.now()
    dead = _job(analyst, status="running", heartbeat_at=now - dt.timedelta(seconds=40))
    alive = _job(analyst, kind="tickets", status="running", heartbeat_at=now - dt.timedelta(seconds=10))
    from analytics.tasks import fail_stale_report_jobs

    # when the beat task runs, then only the silent one is failed, with a reason its owner reads
    assert fail_stale_report_jobs.delay().get() == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == "failed" and "stopped responding (no heartbeat for 40 s)" in dead.error
    assert alive.status == "running"
    assert Notification.objects.filter(recipient=analyst, verb="report.failed").count() == 1


def test_a_job_failed_as_stale_while_it_ran_stays_failed_when_it_finishes(analyst, monkeypatch):
    customer_make("c-1", signup_at=at(2))
    original = reports.write_csv

    def sweep_declares_it_dead_midway(source, out, progress):
        later = timezone.now() + services.stale_running_limit() + dt.timedelta(minutes=1)
        assert services.report_jobs_fail_stale(now=later) == 1
        return original(source, out, progress)

    monkeypatch.setattr(reports, "write_csv", sweep_declares_it_dead_midway)
    job = _job(analyst)
    services.report_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "worker" in job.error
    assert not job.file
    assert list(Notification.objects.filter(recipient=analyst).values_list("verb", flat=True)) == [
        "report.failed"
    ]


def test_a_job_never_picked_up_is_failed(analyst):
    job = _job(analyst)
    ReportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(hours=3))
    assert services.report_jobs_fail_stale() == 1


def test_the_partial_unique_index_allows_one_active_job_per_key(analyst):
    from django.db import IntegrityError, transaction

    _job(analyst)
    with pytest.raises(IntegrityError), transaction.atomic():
        _job(analyst)


def test_tag_members_are_masked_without_view_pii(analyst):
    tag = tag_make("vip")
    membership_make(tag, customer_make("c-1", email="zhang.wei@example.com", phone="13812345678"), at(2))
    job = _job(analyst, kind="tag_members", params={"tag": "vip"})
    services.report_job_run(job_id=job.pk)
    header, row = _csv_rows(job)
    assert header[:5] == ["tag", "external_id", "name", "email", "phone"]
    assert row[3] == "z***@example.com" and row[4] == "138****5678"


def test_customers_are_unmasked_with_view_pii(manager):
    customer_make("c-1", email="zhang.wei@example.com", phone="13812345678")
    job = _job(manager)
    services.report_job_run(job_id=job.pk)
    _header, row = _csv_rows(job)
    assert row[2] == "zhang.wei@example.com"


def test_sla_breaches_report_only_late_tickets(analyst, requester):
    c = at(2, 4)
    late = ticket_make(
        requester=requester,
        created_at=c,
        first_response_at=c + dt.timedelta(hours=2),
        first_response_due=c + dt.timedelta(hours=1),
    )
    ticket_make(
        requester=requester, created_at=c, first_response_at=c, first_response_due=c + dt.timedelta(hours=1)
    )
    job = _job(analyst, kind="sla_breaches")
    services.report_job_run(job_id=job.pk)
    rows = _csv_rows(job)
    assert [r[0] for r in rows[1:]] == [late.key]
    assert rows[1][-1] == "first_response"


def test_ticket_times_are_in_the_owners_time_zone(analyst, requester):
    ticket_make(requester=requester, created_at=at(2, 17))
    job = _job(analyst, kind="tickets")
    services.report_job_run(job_id=job.pk)
    header, row = _csv_rows(job)
    assert row[header.index("created_at")] == "2026-11-03 01:00:00"


def test_xlsx_is_written_and_stops_at_the_row_limit(analyst, tmp_path):
    for n in range(3):
        customer_make(f"c-{n}")
    source = reports.customers_source({}, "Asia/Shanghai", unmasked=False)
    path = str(tmp_path / "out.xlsx")
    rows, truncated = reports.write_xlsx(source, path, progress=lambda n: None, limit=2)
    sheet = load_workbook(path).active
    assert (rows, truncated) == (2, True)
    assert sheet.max_row == 3  # header + 2


def test_xlsx_job_done(analyst):
    customer_make("=cmd", name="+sum")
    job = _job(analyst, file_format="xlsx")
    services.report_job_run(job_id=job.pk)
    job.refresh_from_db()
    with job.file.open("rb") as handle:
        sheet = load_workbook(handle, read_only=True).active
        values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert job.status == "done" and job.truncated is False
    # the name is masked for an owner without view_pii ("+***"), and still neutralised as a formula
    assert values[1][0] == "'=cmd" and values[1][1] == "'+***"


def test_progress_is_recorded_while_writing(analyst, monkeypatch):
    for n in range(12):
        customer_make(f"c-{n}")
    seen = []
    monkeypatch.setattr(services, "PROGRESS_INTERVAL_SECONDS", 0)
    original = reports.write_csv

    def write_in_small_steps(source, out, progress):
        def spy(rows):
            progress(rows)
            seen.append(ReportJob.objects.values_list("status", "rows", "progress").get())

        return original(source, out, spy, every=5)

    monkeypatch.setattr(reports, "write_csv", write_in_small_steps)
    job = _job(analyst)
    services.report_job_run(job_id=job.pk)
    assert seen == [("running", 5, 41), ("running", 10, 83)]


def test_campaign_metrics_csv_comes_from_copy_with_formulas_neutralised(analyst, requester):
    from tests.analytics.factories import campaign_make, metric_make

    campaign = campaign_make(owner=requester, code="evil", name="=1+2")
    metric_make(campaign=campaign, date=dt.date(2026, 11, 2), channel="wechat", spend="12.50", clicks=3)
    metric_make(campaign=campaign, date=dt.date(2026, 11, 3), channel="douyin")
    job = _job(analyst, kind="campaign_metrics", params={"from": "2026-11-03"})
    services.report_job_run(job_id=job.pk)
    header, row = _csv_rows(job)
    job.refresh_from_db()
    assert job.rows == 1
    assert header == [
        "date",
        "campaign",
        "campaign_name",
        "team",
        "channel",
        "spend",
        "impressions",
        "clicks",
        "leads",
        "conversions",
        "revenue",
    ]
    assert row[:5] == ["2026-11-03", "evil", "'=1+2", "E-commerce ops", "douyin"]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_copy_streams_on_its_own_connection_with_progress(
    make_user, support_team, monkeypatch
):
    from tests.analytics.factories import campaign_make, metric_make

    owner = make_user("exporter", role="agent", team=support_team.name)
    requester = make_user("rita", role="requester")
    campaign = campaign_make(owner=requester, code="big")
    for day in range(1, 13):
        metric_make(campaign=campaign, date=dt.date(2026, 11, day), channel="wechat", spend="1.00")
    monkeypatch.setattr(services, "PROGRESS_INTERVAL_SECONDS", 0)
    seen = []
    original = reports._stream_copy

    def small_steps(cursor, statement, arguments, out, progress, every):
        def spy(rows):
            progress(rows)  # writes through Django's connection while the COPY streams on its own
            seen.append(ReportJob.objects.values_list("rows", flat=True).get())

        return original(cursor, statement, arguments, out, spy, 5)

    monkeypatch.setattr(reports, "_stream_copy", small_steps)
    job = _job(owner, kind="campaign_metrics")
    services.report_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows) == ("done", 12)
    assert seen == [5, 10]
