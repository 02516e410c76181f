"""Ranked event times: each customer's k-th most recent event of a type, kept exact by every way events
are written (statement triggers, the bulk fast path's own computation, the validating bulk path), and
the compiled rule driving from them only when they answer for its as_of."""

import io
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection

from crm_tags import importers, ranks
from crm_tags.models import Customer, Event, RankedCount, Tag, TagVersion
from crm_tags.rules import compile_rule, rank_of, ranked_leaf
from tests.crm_tags.ranks_reference import recounted_ranks, stored_ranks

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 3, 1, tzinfo=UTC)
RULE = {
    "all": [
        {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 3},
        {"event": "order", "agg": "count", "window_days": 7, "op": ">", "value": 0.5},
    ]
}


def _register(rule: dict) -> None:
    tag = Tag.objects.create(slug=f"r{Tag.objects.count()}", name="r")
    TagVersion.objects.create(tag=tag, number=1, definition=rule, depends_on=[])
    ranks.sync()


def _customers(n: int) -> None:
    lines = "".join(f"C{i},n{i},,,,,,,\n" for i in range(n))
    importers.import_customers(
        io.StringIO("external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n" + lines)
    )


def _events_csv(rng: random.Random, customers: int, rows: int) -> str:
    lines = ["customer_external_id,event_type,occurred_at,amount,channel"]
    for _ in range(rows):
        at = BASE - timedelta(seconds=rng.randrange(90 * 86400))
        kind = rng.choice(["page_view", "page_view", "order"])
        lines.append(
            f"C{rng.randrange(customers)},{kind},{at.isoformat()},{'' if kind == 'page_view' else 5},web"
        )
    return "\n".join(lines) + "\n"


def test_rank_of_turns_a_threshold_into_k():
    assert rank_of(">=", 5) == 5
    assert rank_of(">=", 4.5) == 5
    assert rank_of(">", 4.5) == 5
    assert rank_of(">", 5) == 6
    assert rank_of(">=", 0) is None  # true for everyone: nothing to drive from
    assert rank_of(">", -1) is None
    assert rank_of("<", 5) is None
    assert rank_of(">=", 51) is None  # beyond MAX_RANK


def test_ranked_leaf_is_the_first_count_in_a_window_of_the_top_level_and():
    assert ranked_leaf(RULE) == (RULE["all"][0], 3)
    assert ranked_leaf({"any": RULE["all"]}) is None  # under OR it cannot drive
    nested = {"all": [{"attr": "city", "op": "=", "value": "x"}, {"all": [RULE["all"][1]]}]}
    assert ranked_leaf(nested) == (RULE["all"][1], 1)
    lifetime = {"event": "order", "agg": "count", "op": ">=", "value": 3}
    assert ranked_leaf(lifetime) is None  # no window: the lifetime totals answer it


@pytest.mark.parametrize(
    "spread",
    [
        10,  # ids and times fit in one 63-bit key: one sort
        1000,  # 16 bits of ids + 51 of times: the customers are sorted in 12 ranges
        10**7,  # 29 + 51 bits, too many ranges: sorted by the two columns
    ],
)
def test_kth_latest_equals_a_sort_per_customer(spread):
    # repeated times count once each
    rng = np.random.default_rng(5)
    customers = rng.integers(0, 50, 3000) * spread + 7
    times = rng.integers(-(10**15), 10**15, 3000)
    times[::7] = times[1::7][: len(times[::7])]  # repeats
    got = {
        k: dict(zip(c.tolist(), t.tolist(), strict=True))
        for k, c, t in ranks.kth_latest(customers, times, [1, 3, 40])
    }
    for k in (1, 3, 40):
        expected = {}
        for customer in set(customers.tolist()):
            mine = sorted(times[customers == customer].tolist(), reverse=True)
            if len(mine) >= k:
                expected[customer] = mine[k - 1]
        assert got[k] == expected


def test_sync_computes_the_ranks_and_drops_pairs_no_rule_uses():
    _customers(30)
    importers.import_events(io.StringIO(_events_csv(random.Random(1), 30, 400)))
    _register(RULE)
    assert set(RankedCount.objects.values_list("event_type", "k")) == {("page_view", 3)}
    assert stored_ranks() == recounted_ranks() and stored_ranks()
    TagVersion.objects.all().delete()
    assert ranks.sync() == (0, 1)
    assert not RankedCount.objects.exists() and stored_ranks() == []


def test_triggers_keep_ranks_exact_on_insert_update_and_delete():
    _customers(20)
    _register(RULE)
    importers.import_events(io.StringIO(_events_csv(random.Random(2), 20, 300)))  # small: the trigger
    assert stored_ranks() == recounted_ranks() and stored_ranks()
    Event.objects.filter(event_type="page_view", customer__external_id="C3").update(
        occurred_at=BASE - timedelta(days=400)
    )
    Event.objects.filter(event_type="page_view", customer__external_id="C4").update(
        customer=Customer.objects.get(external_id="C5")
    )
    Event.objects.filter(pk__in=Event.objects.filter(event_type="page_view").values("pk")[:40]).delete()
    assert stored_ranks() == recounted_ranks()
    Customer.objects.filter(external_id="C6").delete()  # the ORM's cascade
    assert stored_ranks() == recounted_ranks()


@pytest.mark.parametrize("fast", [True, False])
def test_bulk_imports_keep_ranks_first_load_and_after(fast, monkeypatch):
    # the bulk path switches the trigger off: a first load computes the ranks from the file's typed
    # columns (fast path) or by a refresh (validating path); a second bulk load refreshes the touched
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    monkeypatch.setattr(importers, "FAST_EVENTS", fast)
    _customers(40)
    _register(RULE)
    _register({"event": "page_view", "agg": "count", "window_days": 7, "op": ">=", "value": 1})
    rng = random.Random(3)
    importers.import_events(io.StringIO(_events_csv(rng, 40, 600)))
    assert len(stored_ranks()) > 40 and stored_ranks() == recounted_ranks()
    importers.import_events(io.StringIO(_events_csv(rng, 20, 300)))
    assert stored_ranks() == recounted_ranks()
    with connection.cursor() as cursor:  # and the trigger is back on
        cursor.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = %s", [ranks.INSERT_TRIGGER])
        assert cursor.fetchone()[0] == "O"


def _matches(rule: dict, as_of: datetime) -> list[int]:
    compiled = compile_rule(rule, as_of=as_of)
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, compiled.params)
        return sorted(r[0] for r in cursor.fetchall())


def test_the_ranks_drive_the_statement_only_when_they_answer_for_as_of():
    _customers(30)
    importers.import_events(io.StringIO(_events_csv(random.Random(4), 30, 500)))
    rule = {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 3}
    compiled = compile_rule(rule, as_of=BASE)
    assert "FROM (SELECT customer_id FROM crm_tags_eventrank" in compiled.sql
    unranked = {as_of: _matches(rule, as_of) for as_of in (BASE, BASE - timedelta(days=20))}
    _register(rule)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN ANALYZE " + compiled.sql, compiled.params)
        plan = "\n".join(r[0] for r in cursor.fetchall())
    # the ranks answered (no event is after as_of), and the grouped window never ran
    ranked = [line for line in plan.splitlines() if "on crm_tags_eventrank" in line]
    grouped = [line for line in plan.splitlines() if "GroupAggregate" in line]
    assert ranked and "never executed" not in ranked[0] and grouped and "(never executed)" in grouped[0]
    # a back-test (events after as_of exist) falls back to the window: same customers either way
    assert {as_of: _matches(rule, as_of) for as_of in unranked} == unranked
    assert unranked[BASE] and unranked[BASE] != unranked[BASE - timedelta(days=20)]


def test_saving_a_version_registers_the_ranks_it_drives_from(django_capture_on_commit_callbacks):
    from crm_tags import services

    tag = services.tag_create(slug="hp", name="hp", by=None)
    with django_capture_on_commit_callbacks(execute=True):
        services.tag_version_create(tag=tag, definition=RULE, by=None)
    assert list(RankedCount.objects.values_list("event_type", "k")) == [("page_view", 3)]


def _counted() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT customers FROM crm_tags_customercount")
        return cursor.fetchone()[0]


def test_the_customer_count_stays_exact_on_every_write(monkeypatch):
    # the preview's total reads it instead of counting every customer
    start = Customer.objects.count()
    assert _counted() == start
    Customer.objects.create(external_id="solo", name="s")
    _customers(5)
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    _customers(8)  # 5 updated, 3 new, through the bulk path
    assert _counted() == Customer.objects.count() == start + 9
    Customer.objects.filter(external_id__in=["solo", "C0"]).delete()
    assert _counted() == Customer.objects.count() == start + 7
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred key checks pending
        cursor.execute("TRUNCATE crm_tags_customer CASCADE")
    assert _counted() == 0
