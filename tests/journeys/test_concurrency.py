"""Two workers on one database: a claimed batch is invisible to another claim (SKIP LOCKED), and a batch
whose worker dies before commit leaves nothing behind, so the next worker runs each step (and writes each
webhook key) exactly once."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from journeys import delivery, engine
from journeys.models import Delivery, Enrolment, StepRun, WebhookRequest
from tests.journeys import factories as f
from tests.journeys import receiver as rx

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "concurrency-secret"


@pytest.fixture(autouse=True)
def _no_wake_up():
    """Without a wrapping transaction the build's wake-up would run the steps at once (eagerly): here the
    batch must wait for the workers the test plays."""
    from django.db.models.signals import post_save

    from crm_tags.models import TagBuild
    from journeys import triggers

    post_save.disconnect(sender=TagBuild, dispatch_uid="journeys-tag-build-done")
    yield
    post_save.connect(triggers._tag_build_saved, sender=TagBuild, dispatch_uid="journeys-tag-build-done")


def _eventually(check, timeout: float = 15.0) -> bool:
    """Whether `check` holds within `timeout` seconds (checked every 50 ms)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.05)
    return True


class WorkerDied(Exception):
    """Stands for a worker killed mid-batch: its transaction never commits."""


def _hold_a_batch(claimed: list, holding: threading.Event, release: threading.Event, run_steps: bool) -> None:
    try:
        with transaction.atomic():
            enrolments = engine._claim(engine.timezone.now(), 100)
            claimed.extend(enrolments)
            if run_steps:
                runner = engine.Runner(enrolments, engine.timezone.now())
                runner.run()
                runner.save()  # every step run and delivery written...
            holding.set()
            release.wait(timeout=30)
            raise WorkerDied  # ...and then the worker dies before commit
    except WorkerDied:
        pass
    except BaseException as exc:  # noqa: BLE001 - handed to the test, which asserts there are none
        claimed.append(exc)
    finally:
        holding.set()
        connection.close()


def _journey_with_due_enrolments(manager, url, n):
    destination = f.webhook(manager, url, secret=SECRET, batch_size=3)
    tag = f.manual_tag()
    journey = f.journey(
        manager, tag=tag, steps=[{"action": "webhook", "destination": destination.pk, "template": {"x": 1}}]
    )
    f.enter(tag, f.customers(n))
    f.admit()
    return journey


def test_a_claimed_batch_is_skipped_and_a_dead_workers_batch_runs_once(manager):
    receiver, url, server = rx.start(SECRET)
    try:
        journey = _journey_with_due_enrolments(manager, url, 5)
        claimed: list = []
        holding, release = threading.Event(), threading.Event()
        worker = threading.Thread(target=_hold_a_batch, args=(claimed, holding, release, True))
        worker.start()
        assert holding.wait(timeout=30)
        # while the first worker holds its batch, a second claim gets none of it
        with transaction.atomic():
            assert engine._claim(engine.timezone.now(), 100) == []
        release.set()
        worker.join(timeout=30)
        assert len(claimed) == 5, claimed
        # the dead worker's writes are gone
        assert not StepRun.objects.exists() and not Delivery.objects.exists()
        # the next worker runs the batch; every key reaches the receiver exactly once
        assert engine.run_due() == 5
        delivery.send_due()
        assert engine.run_due() == 0
        expected = sorted(f"{journey.pk}-{e.pk}-0" for e in Enrolment.objects.filter(journey=journey))
        # the sending may have been taken by the wake-up's task once the batch committed: wait for it (it
        # is claimed FOR UPDATE SKIP LOCKED, so the call above skips a request another sender holds)
        assert _eventually(lambda: sorted(receiver.delivered_keys()) == expected), (
            receiver.received,
            list(WebhookRequest.objects.values_list("status", "attempts", "last_status", "last_error")),
            list(Delivery.objects.values_list("status", "last_error")),
            list(StepRun.objects.values_list("step", "outcome", "detail")),
        )
        assert StepRun.objects.filter(outcome="acted").count() == 5
    finally:
        server.shutdown()
        server.server_close()


def _database_url() -> str:
    """The test database as a DATABASE_URL, for a worker process of its own."""
    from urllib.parse import quote

    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{db['NAME']}"


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", [pid])
        return cursor.fetchone()[0]


def test_a_sigkilled_worker_process_mid_batch_leaves_every_key_delivered_exactly_once(manager):
    """Issue 20's acceptance: a real worker process runs the engine; its first batch commits (and its
    webhook requests are sent), its second is SIGKILLed after writing its step runs and deliveries but
    before committing. The next run of the engine takes that batch over, and the receiver on loopback sees
    every expected idempotency key exactly once."""
    receiver, url, server = rx.start(SECRET)
    worker = None
    try:
        journey = _journey_with_due_enrolments(manager, url, 7)
        connection.close()  # the worker's claims must not wait on anything this connection holds
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.journeys.engine_worker", "3", "2"],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "DATABASE_URL": _database_url(), "CELERY_TASK_ALWAYS_EAGER": "true"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = worker.stdout.readline()  # the worker says when it is in the middle of its second batch
        assert line.startswith("mid-batch "), (
            line,
            worker.stderr.read() if worker.poll() is not None else "",
        )
        _, backend, ids = line.split()
        in_flight = {int(pk) for pk in ids.split(",")}
        assert len(in_flight) == 3
        # the first batch committed and its three keys were delivered; the second's not (still uncommitted)
        first = {f"{journey.pk}-{pk}-0" for pk in StepRun.objects.values_list("enrolment_id", flat=True)}
        assert len(first) == 3 and not in_flight & set(StepRun.objects.values_list("enrolment_id", flat=True))
        assert _eventually(lambda: sorted(receiver.delivered_keys()) == sorted(first))

        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
        # its backend sees the socket close, rolls the batch back and ends (the locks go with it)
        assert _eventually(lambda: not _backend_alive(int(backend)), timeout=30)

        assert engine.run_due() == 4  # the killed batch and the one never reached
        delivery.send_due()
        assert engine.run_due() == 0
        expected = sorted(f"{journey.pk}-{e.pk}-0" for e in Enrolment.objects.filter(journey=journey))
        assert len(expected) == 7
        assert _eventually(lambda: sorted(receiver.delivered_keys()) == expected), receiver.received
        assert all(r.signature_ok for r in receiver.received)
        assert StepRun.objects.filter(outcome="acted").count() == 7
        assert set(Delivery.objects.values_list("status", flat=True)) == {"grouped"}
        assert set(WebhookRequest.objects.values_list("status", flat=True)) == {"delivered"}
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
        server.shutdown()
        server.server_close()


def _other_connection():
    import psycopg

    params = {
        k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")
    }
    return psycopg.connect(**params)


def test_events_of_an_uncommitted_import_are_not_read_past(manager):
    """An import still writing holds the watermark back, so its events (with lower ids than a later
    import's) are never skipped."""
    from journeys import admission

    person = f.customer()
    admission.process_new_events()  # the cursor starts here
    journey = f.journey(manager, trigger={"kind": "event", "event": "order"})
    other = _other_connection()
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, channel, properties) "
                "VALUES (%s, 'order', now(), 'web', '{}')",
                [person.pk],
            )
        # while that import is uncommitted there is no watermark, and nothing is read
        assert admission.events_watermark() is None
        assert admission.process_new_events()["events"] == 0
        other.commit()
        assert admission.process_new_events()["entered"] == 1
    finally:
        other.close()
    assert [e.customer_id for e in Enrolment.objects.filter(journey=journey)] == [person.pk]
