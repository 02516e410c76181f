"""Event imports at the same time that touch the same customers and event type (issue 16, item 11): the
ranks' trigger used to fail the later one with `UniqueViolation ... crm_tags_eventrank_pkey`. Now writers
of a ranked event type take turns from their trigger to their commit: both imports succeed and the ranks
equal a recount. Each import runs in a thread of its own, on its own database connection."""

import io
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection

from crm_tags import importers, ranks
from crm_tags.models import RankedCount, Tag, TagVersion
from tests.crm_tags.ranks_reference import recounted_ranks, stored_ranks

pytestmark = pytest.mark.django_db(transaction=True)

BASE = datetime(2026, 3, 1, tzinfo=UTC)
# "page_view count >= 2 in 30 days" keeps each customer's 2nd most recent page view
RULE = {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 2}
DEADLINE_SECONDS = 30.0


def _customers(n: int) -> None:
    lines = "".join(f"C{i},n{i},,,,,,,\n" for i in range(n))
    importers.import_customers(
        io.StringIO("external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n" + lines)
    )


def _register(rule: dict) -> None:
    tag = Tag.objects.create(slug="ranked", name="Ranked")
    TagVersion.objects.create(tag=tag, number=1, definition=rule, depends_on=[])
    ranks.sync()
    assert set(RankedCount.objects.values_list("event_type", "k")) == {("page_view", 2)}


def _events_csv(seed: int, customers: int, rows: int) -> str:
    rng = random.Random(seed)
    lines = ["customer_external_id,event_type,occurred_at,amount,channel"]
    for _ in range(rows):
        at = BASE - timedelta(seconds=rng.randrange(20 * 86400))
        lines.append(f"C{rng.randrange(customers)},page_view,{at.isoformat()},,web")
    return "\n".join(lines) + "\n"


def _event_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_tags_event")
        return cursor.fetchone()[0]


def _in_thread(target: Callable[[], Any], errors: list[BaseException]) -> threading.Thread:
    """Run `target` in a thread with its own database connection; exceptions are collected."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which asserts there are none
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _observer() -> psycopg.Connection:
    params = {
        k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")
    }
    return psycopg.connect(**params, autocommit=True)


@pytest.mark.parametrize(
    ("fast", "after_trigger"),
    [
        (True, "_merge_totals"),  # Arrow + COPY: the totals are merged after the COPY fired the trigger
        (False, "_insert_events"),  # the validating path: the events' INSERT fires it
    ],
)
def test_an_import_touching_the_ranks_of_an_uncommitted_one_waits_for_it(fast, after_trigger, monkeypatch):
    # given customers and a rule whose ranks are kept, and small imports (the trigger's path)
    monkeypatch.setattr(importers, "FAST_EVENTS", fast)
    _customers(30)
    _register(RULE)
    first, second = _events_csv(1, 30, 300), _events_csv(2, 30, 300)
    triggered = threading.Event()
    second_done = threading.Event()
    second_pid: list[int] = []
    errors: list[BaseException] = []
    role = threading.local()
    waited: list[tuple] = []
    original = getattr(importers, after_trigger)

    def hold_until_the_second_waits(*args: Any, **kwargs: Any) -> Any:
        """In the first import only: its trigger has written its ranks (uncommitted); let the second
        import start and go on only once the second is blocked on a lock."""
        if not getattr(role, "first", False):
            return original(*args, **kwargs)
        result = original(*args, **kwargs) if after_trigger == "_insert_events" else None
        triggered.set()
        with _observer() as observer:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while not second_done.is_set():
                state = observer.execute(
                    "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = %s", second_pid
                ).fetchone()
                if state and state[0] == "Lock":
                    waited.append(state)
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("the second import never waited on the first")
                time.sleep(0.01)
        return result if after_trigger == "_insert_events" else original(*args, **kwargs)

    monkeypatch.setattr(importers, after_trigger, hold_until_the_second_waits)

    def import_first() -> None:
        role.first = True
        importers.import_events(io.StringIO(first))

    def import_second() -> None:
        connection.ensure_connection()
        second_pid.append(connection.connection.info.backend_pid)
        assert triggered.wait(DEADLINE_SECONDS)
        try:
            importers.import_events(io.StringIO(second))
        finally:
            second_done.set()

    # when the first import has fired the ranks' trigger and, before it commits, a second import of
    # the same customers and event type fires it too
    first_thread = _in_thread(import_first, errors)
    second_thread = _in_thread(import_second, errors)
    first_thread.join(2 * DEADLINE_SECONDS)
    second_thread.join(2 * DEADLINE_SECONDS)

    # then both imports succeed: the second waited for the first's commit, on the ranks writers' turn
    assert not first_thread.is_alive() and not second_thread.is_alive()
    assert errors == []
    assert waited == [("Lock", "advisory")]
    assert _event_count() == 600
    # and the ranks are exactly those a recount of the events gives
    assert stored_ranks() == recounted_ranks()
    assert len(stored_ranks()) == 30


def test_many_overlapping_imports_at_once_all_succeed_with_exact_ranks():
    # given customers, a rule whose ranks are kept and some events already imported
    _customers(40)
    _register(RULE)
    importers.import_events(io.StringIO(_events_csv(0, 40, 100)))
    files = [_events_csv(seed, 40, 400) for seed in range(1, 7)]
    barrier = threading.Barrier(len(files))
    errors: list[BaseException] = []

    def import_at_once(text: str) -> Callable[[], None]:
        def run() -> None:
            connection.ensure_connection()
            barrier.wait(DEADLINE_SECONDS)
            importers.import_events(io.StringIO(text))

        return run

    # when six imports of the same customers and event type start together, each on its own connection
    threads = [_in_thread(import_at_once(text), errors) for text in files]
    for thread in threads:
        thread.join(2 * DEADLINE_SECONDS)

    # then every one of them succeeds
    assert not any(thread.is_alive() for thread in threads)
    assert [str(e).splitlines()[0] for e in errors] == []
    assert _event_count() == 100 + 6 * 400
    # and the ranks equal a recount
    assert stored_ranks() == recounted_ranks()
    assert len(stored_ranks()) == 40
