"""Report jobs under pressure (issue 16, items 4 and 7): a dead worker's job is failed within a minute and
asking again starts a new one; temporary files go on every way out; at most REPORT_JOBS_PER_USER jobs in
progress per person; a cancel that stops a running job at its next progress beat.

The real worker killed mid-job is in tests/reliability/test_worker_killed.py."""

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone, translation

from accounts.models import AuditEntry, Notification
from analytics import report_files, reports, services
from analytics.models import ReportJob
from analytics.tasks import run_report_job
from tests.analytics.factories import customer_make

pytestmark = pytest.mark.django_db
DEADLINE_SECONDS = 20.0


def _job(owner, kind="customers", file_format="csv", params=None, **fields) -> ReportJob:
    params = params or {}
    key = services.report_dedupe_key(owner=owner, kind=kind, params=params, file_format=file_format)
    return ReportJob.objects.create(
        owner=owner, kind=kind, params=params, format=file_format, dedupe_key=key, **fields
    )


def _request(owner, kind="customers", file_format="csv", params=None) -> tuple[ReportJob, bool]:
    return services.report_job_request(owner=owner, kind=kind, params=params or {}, file_format=file_format)


def _wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)
    return value


@pytest.fixture
def work_dir(settings, tmp_path) -> Path:
    settings.REPORT_WORK_DIR = str(tmp_path / "work")
    return tmp_path / "work"


@pytest.fixture
def customers() -> None:
    for n in range(12):
        customer_make(f"c-{n}", name=f"Name {n}")


def _kind_of(name: str) -> str:
    """`xlsxwriter.` for XlsxWriter's directory of sheet files, `tmp.xlsx` for ours, else the name."""
    if name.startswith("xlsxwriter."):
        return "xlsxwriter."
    if name.startswith("tmp") and name.endswith(".xlsx"):
        return "tmp.xlsx"
    return name


def _write_xlsx_in_steps(monkeypatch, during: Callable[[ReportJob, int], None]) -> list[dict]:
    """Make an XLSX job beat every 2 rows and call `during(job, rows)` at each beat; returns, per beat,
    what temporary files the job had then (its directory's entries and XlsxWriter's files)."""
    monkeypatch.setattr(services, "PROGRESS_INTERVAL_SECONDS", 0)
    original = reports.write_xlsx
    seen: list[dict] = []

    def in_steps(source, path, progress):
        def spy(rows: int) -> None:
            job = ReportJob.objects.get()
            directory = report_files.job_dir_path(job.pk)
            seen.append(
                {
                    "dir": directory,
                    "entries": sorted(_kind_of(p.name) for p in directory.iterdir()),
                    "xlsxwriter": [f for d in directory.glob("xlsxwriter.*") for f in d.iterdir()],
                    "path": path,
                }
            )
            during(job, rows)
            progress(rows)

        return original(source, path, spy, every=2)

    monkeypatch.setattr(reports, "write_xlsx", in_steps)
    return seen


# --- a dead worker (item 4) --------------------------------------------------------------------


def test_a_dead_job_is_failed_within_a_minute_of_its_last_heartbeat():
    # given the stale limit and how often the beat task looks
    sweep = settings.CELERY_BEAT_SCHEDULE["analytics-fail-stale-report-jobs"]["schedule"]
    beat = settings.REPORT_JOB_HEARTBEAT_SECONDS
    # then a job that stops beating is failed at most stale limit + one sweep interval later, and a
    # live one misses no more than a couple of beats before being taken for dead
    assert settings.REPORT_JOB_STALE_SECONDS + sweep <= 60
    assert settings.REPORT_JOB_STALE_SECONDS >= 3 * beat


def test_asking_again_for_a_report_whose_worker_died_starts_a_new_job(
    analyst, django_capture_on_commit_callbacks
):
    # given the same report "running" whose worker last beat 40 s ago (it died)
    dead = _job(analyst, status="running", heartbeat_at=timezone.now() - dt.timedelta(seconds=40))

    # when its owner asks for it again
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job, created = _request(analyst)

    # then a new job is queued instead of joining the dead one
    assert created and job.pk != dead.pk and len(callbacks) == 1
    # and the dead one is failed with a visible reason, its owner told
    dead.refresh_from_db()
    assert dead.status == "failed"
    assert "stopped responding" in dead.error
    assert Notification.objects.filter(recipient=analyst, verb="report.failed").exists()


def test_asking_again_for_a_report_whose_worker_beats_joins_it(analyst):
    # given the same report running with a heartbeat 5 s old
    alive = _job(analyst, status="running", heartbeat_at=timezone.now() - dt.timedelta(seconds=5))
    # when its owner asks again, then they join it
    job, created = _request(analyst)
    assert (job.pk, created) == (alive.pk, False)


@pytest.mark.django_db(transaction=True)
def test_a_job_busy_in_one_long_step_keeps_beating(analyst, settings, work_dir, monkeypatch):
    # given heartbeats every 50 ms, and a report whose count takes until the heartbeat has moved on
    settings.REPORT_JOB_HEARTBEAT_SECONDS = 0.05
    customer_make("c-1")
    job = _job(analyst)
    original = reports.count_rows
    beats: list[dt.datetime] = []

    def slow_count(source):
        claimed = ReportJob.objects.get(pk=job.pk).heartbeat_at
        beats.append(claimed)
        beats.append(
            _wait_for(
                "the heartbeat moves while the job is busy",
                lambda: (at := ReportJob.objects.get(pk=job.pk).heartbeat_at) > claimed and at,
            )
        )
        return original(source)

    monkeypatch.setattr(reports, "count_rows", slow_count)

    # when the job runs (no progress beat happens while it counts)
    services.report_job_run(job_id=job.pk)

    # then its heartbeat was refreshed meanwhile by the worker's heartbeat thread, and it finished
    assert beats[1] > beats[0]
    job.refresh_from_db()
    assert job.status == "done"


# --- temporary files (item 4) ------------------------------------------------------------------


def test_a_done_job_leaves_no_temporary_file(analyst, customers, work_dir, monkeypatch):
    # given an XLSX job that records its temporary files while it writes
    seen = _write_xlsx_in_steps(monkeypatch, lambda job, rows: None)
    job = _job(analyst, file_format="xlsx")

    # when it runs to the end
    services.report_job_run(job_id=job.pk)

    # then while it wrote, its file and XlsxWriter's sheet rows were in the job's own directory
    job.refresh_from_db()
    assert job.status == "done"
    assert seen and seen[0]["dir"] == work_dir / f"job-{job.pk}"
    assert seen[0]["entries"] == ["tmp.xlsx", "xlsxwriter."]
    assert seen[0]["xlsxwriter"] and all(f.parent.parent == seen[0]["dir"] for f in seen[0]["xlsxwriter"])
    # and now neither the directory nor any of those files is left
    assert not seen[0]["dir"].exists()
    assert not any(Path(f).exists() for f in seen[0]["xlsxwriter"] + [seen[0]["path"]])


def test_a_failing_job_leaves_no_temporary_file(analyst, customers, work_dir, monkeypatch):
    # given an XLSX job that breaks in the middle of writing its sheet
    def break_down(job, rows):
        raise OSError("disk full")

    seen = _write_xlsx_in_steps(monkeypatch, break_down)
    job = _job(analyst, file_format="xlsx")

    # when it runs
    services.report_job_run(job_id=job.pk)

    # then it failed with its reason, and the temporary files it had are gone
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "disk full")
    assert seen[0]["entries"] == ["tmp.xlsx", "xlsxwriter."]
    assert not any(Path(f).exists() for f in seen[0]["xlsxwriter"] + [seen[0]["path"]])
    assert not seen[0]["dir"].exists()


def test_the_sweep_removes_what_stopped_jobs_left_and_keeps_running_ones(analyst, work_dir):
    # given the work directories of a job failed after its worker was killed, and of a running job
    killed = _job(analyst, status="failed")
    running = _job(analyst, kind="tickets", status="running", heartbeat_at=timezone.now())
    for job in (killed, running):
        directory = work_dir / f"job-{job.pk}"
        directory.mkdir(parents=True)
        (directory / "xlsxwriter.abc123").mkdir()
        (directory / "xlsxwriter.abc123" / "tmpz9x8c7").write_text("<row>")
        (directory / "tmpq1w2e3.xlsx").write_bytes(b"")

    # when the sweep runs
    removed = services.report_work_dirs_sweep()

    # then the stopped job's files are gone and the running job's are kept
    assert removed == 1
    assert not (work_dir / f"job-{killed.pk}").exists()
    assert sorted(p.name for p in (work_dir / f"job-{running.pk}").iterdir()) == [
        "tmpq1w2e3.xlsx",
        "xlsxwriter.abc123",
    ]


# --- quotas (item 7) ---------------------------------------------------------------------------


def test_a_fourth_report_in_progress_is_refused_naming_the_three(analyst):
    # given three different reports of one person in progress
    first, _ = _request(analyst, kind="customers")
    second, _ = _request(analyst, kind="tickets")
    third, _ = _request(analyst, kind="customers", file_format="xlsx")

    # when a fourth is asked for
    with pytest.raises(services.ReportQuotaExceeded) as refused:
        _request(analyst, kind="sla_breaches")

    # then it is refused, naming the three in progress, and nothing is queued
    assert refused.value.limit == 3
    assert [j.pk for j in refused.value.active] == [first.pk, second.pk, third.pk]
    with translation.override("en"):
        message = refused.value.message()
    assert f"Customers #{first.pk} (CSV, Queued, 0 %)" in message
    assert f"Tickets #{second.pk}" in message and f"Customers #{third.pk} (XLSX" in message
    assert ReportJob.objects.count() == 3


def test_at_the_limit_the_same_report_is_still_joined_and_an_ended_one_frees_a_place(analyst):
    # given three reports in progress
    first, _ = _request(analyst, kind="customers")
    _request(analyst, kind="tickets")
    _request(analyst, kind="campaign_metrics")
    # when one of them is asked for again, then it is joined
    assert _request(analyst, kind="customers") == (first, False)
    # when one ends, then a new report may start
    services.report_job_cancel(job=first, by=analyst)
    job, created = _request(analyst, kind="sla_breaches")
    assert created and job.status == "queued"


def test_the_limit_is_a_setting(analyst, settings):
    settings.REPORT_JOBS_PER_USER = 1
    _request(analyst, kind="customers")
    with pytest.raises(services.ReportQuotaExceeded):
        _request(analyst, kind="tickets")


def test_the_limit_is_per_person(analyst, manager):
    for kind in ("customers", "tickets", "campaign_metrics"):
        _request(analyst, kind=kind)
    job, created = _request(manager, kind="customers")
    assert created and job.owner == manager


@pytest.mark.django_db(transaction=True)
def test_many_requests_at_the_same_moment_start_no_more_than_the_limit(analyst, monkeypatch):
    # given ten different full-table exports asked for by one person at the same moment, each on its own
    # connection (the issue saw 40 queued in 1.1 s)
    kinds = [(kind, fmt) for kind in ReportJob.Kind.values for fmt in ReportJob.Format.values]
    barrier = threading.Barrier(len(kinds))
    created: list[int] = []
    refused: list[int] = []
    errors: list[BaseException] = []

    def ask(kind: str, fmt: str) -> None:
        try:
            barrier.wait(DEADLINE_SECONDS)
            try:
                job, _new = _request(analyst, kind=kind, file_format=fmt)
                created.append(job.pk)
            except services.ReportQuotaExceeded:
                refused.append(1)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)
        finally:
            connection.close()

    # when they all run (the jobs stay queued: no worker takes them here)
    monkeypatch.setattr(run_report_job, "apply_async", lambda *args, **kwargs: None)
    threads = [threading.Thread(target=ask, args=pair) for pair in kinds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * DEADLINE_SECONDS)

    # then exactly three were queued and the rest refused
    assert errors == []
    assert (len(created), len(refused)) == (3, len(kinds) - 3)
    assert ReportJob.objects.filter(owner=analyst, status="queued").count() == 3


# --- cancel (item 7) ---------------------------------------------------------------------------


def test_a_queued_job_cancelled_is_never_run(analyst):
    # given a queued job
    job, _ = _request(analyst)
    # when its owner cancels it
    cancelled = services.report_job_cancel(job=job, by=analyst)
    # then it has ended as cancelled, audited, and the worker's message later finds nothing to do
    assert (cancelled.status, cancelled.finished_at is not None) == ("cancelled", True)
    assert AuditEntry.objects.filter(action="report.cancel", object_id=str(job.pk)).exists()
    assert run_report_job.apply(args=[job.pk]).get() == "skipped"
    assert ReportJob.objects.get(pk=job.pk).status == "cancelled"


def test_a_running_job_cancelled_stops_at_its_next_beat_and_cleans_up(
    analyst, customers, work_dir, monkeypatch, settings, tmp_path
):
    # given an XLSX job of 12 rows that beats every 2 rows, cancelled by its owner at the first beat
    settings.MEDIA_ROOT = str(tmp_path / "media")

    def cancel_at_first_beat(job, rows):
        if rows == 2:
            services.report_job_cancel(job=job, by=analyst)

    seen = _write_xlsx_in_steps(monkeypatch, cancel_at_first_beat)
    job = _job(analyst, file_format="xlsx")

    # when it runs
    assert run_report_job.apply(args=[job.pk]).get() == "cancelled"

    # then it stopped at that beat: no later beat, no file stored, its temporary files gone
    job.refresh_from_db()
    assert job.status == "cancelled" and not job.file and job.error == ""
    assert len(seen) == 1
    assert seen[0]["entries"] == ["tmp.xlsx", "xlsxwriter."]
    assert not seen[0]["dir"].exists()
    assert not any(Path(f).exists() for f in seen[0]["xlsxwriter"] + [seen[0]["path"]])
    stored = tmp_path / "media" / "reports"
    assert not stored.exists() or not any(stored.iterdir())
    # and its owner is not told it failed or is ready
    assert not Notification.objects.filter(recipient=analyst).exists()


def test_an_ended_job_cannot_be_cancelled(analyst):
    job = _job(analyst, status="done")
    with pytest.raises(services.ReportJobFinished):
        services.report_job_cancel(job=job, by=analyst)
    assert ReportJob.objects.get(pk=job.pk).status == "done"


def test_only_its_owner_cancels_a_job(analyst, manager):
    job, _ = _request(analyst)
    with pytest.raises(PermissionDenied):
        services.report_job_cancel(job=job, by=manager)
    assert ReportJob.objects.get(pk=job.pk).status == "queued"
