"""A real Celery worker SIGKILLed in the middle of a tag build or a report job (issue #8): no half-applied
membership, the job ends failed (never "running" for ever), and the next job on a new worker succeeds.

Each test starts `celery worker --pool=solo` as a subprocess on the pytest database and this process's
Redis database. The job is stopped at a point the test controls, not by timing: the test holds a row or
table lock the job needs, waits until the worker's backend is blocked on it inside the job, then kills
the worker's process group with SIGKILL.

Why a naive version hangs: a backend whose client is killed while it runs a query or waits on a lock
does not notice until that query ends (seen here with DB_CLIENT_CHECK_INTERVAL=0: the backend stays
"active" in the membership INSERT). It keeps its transaction, its locks and the build's advisory lock,
so the sweep sees a live build, and pytest-django's TRUNCATE at teardown queues behind those locks for
as long as the query runs (a pg_sleep, or a lock nobody releases). Production now sets
`client_connection_check_interval` on every session (config/settings.py), so Postgres ends such a
backend within seconds; the tests assert that while they still hold their lock. The teardown still kills the worker and terminates any backend it left (found by
its application_name) before the database is flushed, and every wait has a deadline.
"""

import ctypes
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from accounts.models import Notification
from analytics import services as analytics_services
from analytics.models import ReportJob
from analytics.tasks import fail_stale_report_jobs, run_report_job
from config.celery import app as celery_app
from crm_tags import services as tag_services
from crm_tags.models import Customer, Tag, TagBuild, TagMembership, TagMembershipChange, TagVersion
from crm_tags.tasks import run_tag_build

# Every wait has a deadline, so a failure never hangs the suite. A worker boots in about 3 s on an idle
# machine but took up to 20 s on the shared 2-core one; a dead client's backend goes within 2 s.
BOOT_SECONDS = 60.0
GONE_SECONDS = 15.0
# the queues (one Redis list each, config/settings.py TASK_QUEUE_NAMES) and kombu's bookkeeping
KOMBU_KEYS = ("celery", *settings.TASK_QUEUE_NAMES, "unacked", "unacked_index", "unacked_mutex")
SHEET_ROWS = 40_000


def _wait_for(
    what: str, check: Callable[[], Any], seconds: float, diagnostics: Callable[[], str] = lambda: ""
) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` and diagnostics at the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f}s waiting until {what}\n{diagnostics()}")
        time.sleep(0.05)


def _connect(**kwargs: Any) -> psycopg.Connection:
    """A connection of our own to the test database (not Django's)."""
    params = {
        k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")
    }
    return psycopg.connect(**params, **kwargs)


def _die_with_parent() -> None:
    """In the child: SIGKILL it when pytest dies, even without running its teardown (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Worker:
    """One `celery worker --pool=solo` subprocess in its own process group."""

    def __init__(self, app_name: str, log_path: Path) -> None:
        db = connection.settings_dict
        auth = quote(db["USER"] or "", safe="") + (
            f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{quote(db['NAME'], safe='')}",
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": celery_app.conf.broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "MEDIA_ROOT": os.path.abspath(settings.MEDIA_ROOT),
            "REPORT_WORK_DIR": settings.REPORT_WORK_DIR,
            "PGAPPNAME": app_name,  # libpq: every backend of this worker carries this application_name
        }
        command = [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "-c",
            "1",
            "-n",
            f"{app_name}-{uuid.uuid4().hex[:6]}@%h",
            "-Q",
            ",".join(settings.TASK_QUEUE_NAMES),  # builds and reports go to queues of their own
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
        ]
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own venv's celery, fixed arguments
                command,
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so SIGKILL reaches all of it
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - single-threaded here; no orphan workers
            )

    def log_tail(self) -> str:
        try:
            return "worker log:\n" + self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the worker exited early ({self.process.returncode})\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group (as the OOM killer or a lost machine would: no cleanup)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)


@pytest.fixture
def observer(transactional_db) -> Iterator[psycopg.Connection]:
    """An autocommit connection that watches pg_stat_activity and pg_locks."""
    with _connect(autocommit=True, application_name="killtest-observer") as conn:
        yield conn


@pytest.fixture
def gate(transactional_db) -> Iterator[psycopg.Connection]:
    """A connection whose open transaction holds the lock the job will wait on; rolled back to release."""
    conn = _connect(application_name="killtest-gate")
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def start_worker(transactional_db, observer, tmp_path) -> Iterator[Callable[[], Worker]]:
    """Start real workers on demand; at teardown (before pytest-django flushes the database) every worker
    is killed and every backend they left is terminated, so the flush never waits on a lock."""
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    broker.delete(*KOMBU_KEYS)
    app_name = f"killtest-worker-{uuid.uuid4().hex[:8]}"
    workers: list[Worker] = []

    def start() -> Worker:
        celery_app.conf.task_always_eager = False  # from now on .delay() goes to the real broker
        # The queue's binding lives in Redis, which the per-test cache.clear() flushes: declare it again
        # so a message sent before the worker has started is queued, not routed to the dead-letter queue.
        with celery_app.connection_for_write() as conn:
            for queue in settings.TASK_QUEUE_NAMES:
                celery_app.amqp.queues[queue](conn.default_channel).declare()
        worker = Worker(app_name, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    start.app_name = app_name  # type: ignore[attr-defined]
    start.broker = broker  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        celery_app.conf.task_always_eager = True
        for worker in workers:
            worker.kill()
        observer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [app_name]
        )
        _wait_for("the workers' backends are gone", lambda: not _backends(observer, app_name), GONE_SECONDS)
        broker.delete(*KOMBU_KEYS)


def _backends(observer: psycopg.Connection, app_name: str) -> list[tuple]:
    return observer.execute(
        "SELECT pid, state, wait_event_type, wait_event, left(query, 200) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s",
        [app_name],
    ).fetchall()


def _backend_blocked_by(
    observer: psycopg.Connection, app_name: str, gate: psycopg.Connection
) -> tuple | None:
    """(pid, query) of the worker's backend while it waits on the gate's lock."""
    return observer.execute(
        "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = %s AND %s = ANY(pg_blocking_pids(pid))",
        [app_name, gate.info.backend_pid],
    ).fetchone()


def _kill_mid_job(worker, start_worker, observer, gate, task: str, pk: int):
    """SIGKILL the worker (a replacement starts booting meanwhile, as a supervisor would), check that the
    task's message is still unacknowledged, wait until Postgres has ended the dead worker's backend, then
    release the test's lock. Returns the replacement worker."""
    worker.kill()
    new_worker = start_worker()
    assert (task, f"({pk},)") in _unacked_tasks(start_worker.broker)
    _wait_for(
        "the killed worker's backend is gone",
        lambda: not _backends(observer, start_worker.app_name),
        GONE_SECONDS,
        lambda: repr(_backends(observer, start_worker.app_name)),
    )
    gate.rollback()
    return new_worker


def _unacked_tasks(broker: redis.Redis) -> list[tuple[str, str]]:
    """(task name, args) of the messages a worker took but never acknowledged (redelivered later)."""
    found = []
    for raw in broker.hvals("unacked"):
        message = json.loads(raw)[0]
        found.append((message["headers"]["task"], message["headers"]["argsrepr"]))
    return found


# --- tag build ---------------------------------------------------------------------------------


def _customers(city: str, count: int) -> list[Customer]:
    prefix = uuid.uuid4().hex[:6]
    return Customer.objects.bulk_create(
        Customer(external_id=f"{prefix}-{city}-{i}", name=f"{city} {i}", city=city) for i in range(count)
    )


def _membership(tag: Tag) -> tuple[set[int], int, int]:
    """(member ids, history rows, the tag's members_count)."""
    tag.refresh_from_db()
    members = set(TagMembership.objects.filter(tag=tag).values_list("customer_id", flat=True))
    return members, TagMembershipChange.objects.filter(tag=tag).count(), tag.members_count


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_tag_build(start_worker, observer, gate):
    # given a rule tag built at version 1 (city = Hangzhou) and a version 2 (city = Suzhou) to publish
    hangzhou = _customers("Hangzhou", 20)
    suzhou = _customers("Suzhou", 20)
    _customers("Beijing", 10)
    tag = Tag.objects.create(slug="killed-build", name="Killed build", kind=Tag.Kind.RULE)
    TagVersion.objects.create(tag=tag, number=1, definition={"attr": "city", "op": "=", "value": "Hangzhou"})
    TagVersion.objects.create(tag=tag, number=2, definition={"attr": "city", "op": "=", "value": "Suzhou"})
    tag_services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=None)  # eager: built inline
    before = _membership(tag)
    assert before == ({c.pk for c in hangzhou}, 20, 20)

    # and the test's open transaction has inserted (not committed) the membership of a customer who is
    # about to enter: the build, having deleted the leavers in its transaction, waits on that row in the
    # middle of inserting the newcomers (Django's foreign keys are deferred, so no lock before that)
    gate.execute(
        "INSERT INTO crm_tags_tagmembership (tag_id, customer_id, since) VALUES (%s, %s, now())",
        [tag.pk, suzhou[0].pk],
    )

    # when a real worker takes the build of version 2
    worker = start_worker()
    build = tag_services.tag_publish(tag=tag, version_number=2, rollout_percent=100, by=None)

    def in_the_middle() -> tuple | None:
        worker.assert_alive()
        if TagBuild.objects.get(pk=build.pk).status != TagBuild.Status.RUNNING:
            return None
        return _backend_blocked_by(observer, start_worker.app_name, gate)

    pid, query = _wait_for(
        "the build is running and blocked on the test's lock", in_the_middle, BOOT_SECONDS, worker.log_tail
    )
    assert "crm_tags_tagmembership" in query  # it is applying membership
    holds_build_lock = observer.execute(
        "SELECT granted FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND classid = %s AND objid = %s",
        [pid, tag_services.BUILD_LOCK_NAMESPACE, build.pk],
    ).fetchone()
    assert holds_build_lock == (True,)

    # and the worker is SIGKILLed there: its message waits unacknowledged (acks_late) for redelivery, and
    # Postgres ends the orphaned backend by itself (client connection check) although the lock it waits on
    # is still held, so its transaction rolls back and the build's advisory lock is free
    new_worker = _kill_mid_job(worker, start_worker, observer, gate, "crm_tags.tasks.run_tag_build", build.pk)

    # and nothing of the build was applied: membership, history and the count are as before
    assert _membership(tag) == before
    # and the build stays "running" only until the sweep runs (beat, every minute, after a grace)
    assert TagBuild.objects.get(pk=build.pk).status == TagBuild.Status.RUNNING
    assert tag_services.tag_builds_fail_orphaned() == 0  # still within the grace period
    later = timezone.now() + tag_services.ORPHAN_GRACE + dt.timedelta(seconds=1)
    assert tag_services.tag_builds_fail_orphaned(now=later) == 1
    failed = TagBuild.objects.get(pk=build.pk)
    assert failed.status == TagBuild.Status.FAILED
    assert "worker stopped" in failed.error
    # and when the message is redelivered, the failed build is not run again
    run_tag_build.apply(args=[build.pk])
    assert TagBuild.objects.get(pk=build.pk).status == TagBuild.Status.FAILED
    assert _membership(tag) == before

    # when the new worker runs a new build of the tag
    rebuild = tag_services.tag_build_queue(tag=tag, trigger=TagBuild.Trigger.MANUAL)

    def finished() -> TagBuild | None:
        new_worker.assert_alive()
        current = TagBuild.objects.get(pk=rebuild.pk)
        return current if current.status in (TagBuild.Status.DONE, TagBuild.Status.FAILED) else None

    done = _wait_for("the new build has finished", finished, BOOT_SECONDS, new_worker.log_tail)
    # then it succeeds and applies version 2 completely
    assert done.status == TagBuild.Status.DONE, done.error
    assert (done.members, done.entered, done.exited) == (20, 20, 20)
    assert _membership(tag) == ({c.pk for c in suzhou}, 60, 20)
    assert not TagMembershipChange.objects.filter(build_id=build.pk).exists()


# --- report job --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_report_job(start_worker, observer, gate, make_user, monkeypatch, settings):
    # given workers that beat every second, and dead after 5 s of silence
    monkeypatch.setenv("REPORT_JOB_HEARTBEAT_SECONDS", "1")
    settings.REPORT_JOB_STALE_SECONDS = 5
    owner = make_user("exporter", role="agent", team="MarTech support")
    _customers("Ningbo", 15)
    # given the test holds the customers table, so the report's first query waits after the job is claimed
    gate.execute("LOCK TABLE crm_tags_customer IN ACCESS EXCLUSIVE MODE")

    # when a real worker takes a customers report
    worker = start_worker()
    job, created = analytics_services.report_job_request(
        owner=owner, kind=ReportJob.Kind.CUSTOMERS, params={}, file_format=ReportJob.Format.CSV
    )
    assert created

    def in_the_middle() -> tuple | None:
        worker.assert_alive()
        if ReportJob.objects.get(pk=job.pk).status != ReportJob.Status.RUNNING:
            return None
        return _backend_blocked_by(observer, start_worker.app_name, gate)

    _wait_for(
        "the report job is running and blocked on the test's lock",
        in_the_middle,
        BOOT_SECONDS,
        worker.log_tail,
    )
    # then, blocked for longer than the stale limit (issue 16, item 4), it is not taken for dead: its
    # worker's heartbeat thread goes on beating while the job waits in its query
    started = ReportJob.objects.get(pk=job.pk).started_at
    limit = analytics_services.stale_running_limit()
    busy = _wait_for(
        "the blocked job's heartbeat is newer than the stale limit after its start",
        lambda: (
            (j := ReportJob.objects.get(pk=job.pk)).heartbeat_at > started + limit + dt.timedelta(seconds=1)
            and j
        ),
        BOOT_SECONDS,
        worker.log_tail,
    )
    assert busy.status == ReportJob.Status.RUNNING
    assert analytics_services.report_jobs_fail_stale() == 0
    # and the worker is SIGKILLed there: the message waits for redelivery, Postgres ends the backend
    new_worker = _kill_mid_job(worker, start_worker, observer, gate, "analytics.tasks.run_report_job", job.pk)

    # and the job is "running" only until its heartbeat is stale: the sweep leaves a fresh one alone
    killed = ReportJob.objects.get(pk=job.pk)
    assert killed.status == ReportJob.Status.RUNNING
    assert killed.heartbeat_at is not None
    limit = analytics_services.stale_running_limit()
    assert (
        analytics_services.report_jobs_fail_stale(now=killed.heartbeat_at + limit - dt.timedelta(seconds=1))
        == 0
    )
    later = killed.heartbeat_at + limit + dt.timedelta(seconds=1)
    assert analytics_services.report_jobs_fail_stale(now=later) == 1
    failed = ReportJob.objects.get(pk=job.pk)
    assert failed.status == ReportJob.Status.FAILED
    assert failed.error
    assert not failed.file  # no half-written file is offered
    assert Notification.objects.filter(recipient=owner, verb="report.failed").exists()
    # and a redelivered message does not run the failed job again
    assert run_report_job.apply(args=[job.pk]).get() == "skipped"
    assert ReportJob.objects.get(pk=job.pk).status == ReportJob.Status.FAILED

    # when the owner asks again and the new worker runs it
    again, created = analytics_services.report_job_request(
        owner=owner, kind=ReportJob.Kind.CUSTOMERS, params={}, file_format=ReportJob.Format.CSV
    )
    assert created
    assert again.pk != job.pk

    def finished() -> ReportJob | None:
        new_worker.assert_alive()
        current = ReportJob.objects.get(pk=again.pk)
        return current if current.status in (ReportJob.Status.DONE, ReportJob.Status.FAILED) else None

    done = _wait_for("the new report job has finished", finished, BOOT_SECONDS, new_worker.log_tail)
    # then it is written completely
    assert done.status == ReportJob.Status.DONE, done.error
    assert done.rows == 15
    with default_storage.open(done.file.name) as handle:
        lines = handle.read().decode("utf-8-sig").splitlines()
    default_storage.delete(done.file.name)
    assert len(lines) == 1 + 15


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_xlsx_report(
    start_worker, observer, gate, make_user, tmp_path, monkeypatch, settings
):
    """Issue 16, item 4: a killed job is failed within the stale limit (not ~18 minutes), the temporary files
    it left (its workbook, XlsxWriter's folder of sheet rows) are removed by the sweep, and asking again starts anew."""
    # given workers that beat every second and write their temporary files in the test's own directory
    work = tmp_path / "report-work"
    monkeypatch.setenv("REPORT_JOB_HEARTBEAT_SECONDS", "1")
    settings.REPORT_WORK_DIR = str(work)
    settings.REPORT_JOB_STALE_SECONDS = 5
    owner = make_user("sheets", role="agent", team="MarTech support")
    tag = Tag.objects.create(slug="sheet-members", name="Sheet members", kind=Tag.Kind.MANUAL)
    # and a tag of 40,000 members: seconds of writing, several progress beats
    TagMembership.objects.bulk_create(
        TagMembership(tag=tag, customer=c, since=timezone.now()) for c in _customers("Wuxi", SHEET_ROWS)
    )

    # when a real worker takes an XLSX tag members report
    worker = start_worker()
    job, created = analytics_services.report_job_request(
        owner=owner, kind=ReportJob.Kind.TAG_MEMBERS, params={}, file_format=ReportJob.Format.XLSX
    )
    assert created

    # and, once it has counted its rows, the test holds the job's row: the worker writes its sheet until
    # its first progress beat (a second later at the soonest), and waits there on the row
    def counted() -> bool:
        worker.assert_alive()
        return ReportJob.objects.get(pk=job.pk).total_rows is not None

    _wait_for("the job has counted its rows", counted, BOOT_SECONDS, worker.log_tail)
    gate.execute("SELECT 1 FROM analytics_reportjob WHERE id = %s FOR UPDATE", [job.pk])

    def at_its_progress_beat() -> tuple | None:
        worker.assert_alive()
        return observer.execute(
            # waiting on the gate, or queued behind the heartbeat thread's update that waits on it
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s "
            "AND wait_event_type = 'Lock' AND query LIKE '%%\"progress\"%%'",
            [start_worker.app_name],
        ).fetchone()

    _wait_for(
        "the job waits at a progress beat",
        at_its_progress_beat,
        BOOT_SECONDS,
        lambda: f"{_backends(observer, start_worker.app_name)!r}\n{worker.log_tail()}",
    )
    assert 0 < ReportJob.objects.get(pk=job.pk).total_rows == SHEET_ROWS
    # then its temporary files are in its own directory: its workbook and XlsxWriter's folder of sheet rows
    job_dir = work / f"job-{job.pk}"
    left = sorted(
        "xlsxwriter.*"
        if name.startswith("xlsxwriter.")
        else "tmp*.xlsx"
        if re.fullmatch(r"tmp.*\.xlsx", name)
        else name
        for name in os.listdir(job_dir)
    )
    assert left == ["tmp*.xlsx", "xlsxwriter.*"]
    rows_dir = next(job_dir.glob("xlsxwriter.*"))
    assert any(path.stat().st_size > 0 for path in rows_dir.rglob("*") if path.is_file())

    # when the worker is SIGKILLed there
    killed_at = time.monotonic()
    new_worker = _kill_mid_job(worker, start_worker, observer, gate, "analytics.tasks.run_report_job", job.pk)

    # then the beat task fails it once its heartbeat is older than the stale limit (seconds, not minutes)
    def failed_by_the_sweep() -> ReportJob | None:
        fail_stale_report_jobs.apply().get()
        current = ReportJob.objects.get(pk=job.pk)
        return current if current.status == ReportJob.Status.FAILED else None

    failed = _wait_for("the sweep fails the dead job", failed_by_the_sweep, 60.0)
    assert time.monotonic() - killed_at < 60
    assert "stopped responding" in failed.error and not failed.file
    assert Notification.objects.filter(recipient=owner, verb="report.failed").exists()
    # and the same sweep removed what the killed worker left
    assert not job_dir.exists()

    # when the owner asks for the same report again, then a new job starts and the new worker writes it
    again, created = analytics_services.report_job_request(
        owner=owner, kind=ReportJob.Kind.TAG_MEMBERS, params={}, file_format=ReportJob.Format.XLSX
    )
    assert created and again.pk != job.pk

    def finished() -> ReportJob | None:
        new_worker.assert_alive()
        current = ReportJob.objects.get(pk=again.pk)
        return current if current.status in (ReportJob.Status.DONE, ReportJob.Status.FAILED) else None

    done = _wait_for("the new report job has finished", finished, BOOT_SECONDS, new_worker.log_tail)
    assert done.status == ReportJob.Status.DONE, done.error
    assert done.rows == SHEET_ROWS
    default_storage.delete(done.file.name)
    # and it left no temporary file behind
    assert list(work.iterdir()) == []
