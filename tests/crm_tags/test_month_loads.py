"""Big events loads into the partitioned table, month by month (crm_tags.importers.month_loads): the
months a load fills are rebuilt and attached again, the history's months are never touched, ids stay
unique and from the events' sequence, and a failure leaves every month attached as it was."""

import datetime
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection

from crm_tags import importers
from crm_tags.importers import events as event_importer
from crm_tags.importers import month_loads
from tests.crm_tags import factories
from tests.crm_tags.test_partitions import _at, _recounted_totals, _stored_totals

pytestmark = pytest.mark.django_db

PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast path", "staged path"])


def _index_files() -> dict[str, int]:
    """Each month partition's indexes by name, with the file that holds the index: a rebuilt index gets
    a new file, an untouched one keeps its own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname, i.relfilenode FROM pg_inherits h JOIN pg_index x ON x.indrelid = h.inhrelid "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE h.inhparent = 'crm_tags_event'::regclass"
        )
        return dict(cursor.fetchall())


def _layout() -> dict[str, object]:
    """What must hold after any load: every month attached, each of its indexes a part of the parent's
    index, its key to the customers there and checked."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class c WHERE c.relname LIKE 'crm_tags_event_p%%' AND c.relkind = 'r' "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid)"
        )
        loose_tables = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM pg_inherits h JOIN pg_index x ON x.indrelid = h.inhrelid "
            "WHERE h.inhparent = 'crm_tags_event'::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits p WHERE p.inhrelid = x.indexrelid)"
        )
        loose_indexes = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM pg_inherits h WHERE h.inhparent = 'crm_tags_event'::regclass AND NOT EXISTS ("
            "SELECT 1 FROM pg_constraint k WHERE k.conrelid = h.inhrelid AND k.contype = 'f' AND k.convalidated)"
        )
        without_key = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM pg_inherits h WHERE h.inhparent = 'crm_tags_event'::regclass AND NOT EXISTS ("
            "SELECT 1 FROM pg_index x WHERE x.indrelid = h.inhrelid AND x.indisprimary)"
        )
        without_primary_key = cursor.fetchone()[0]
    return {
        "loose tables": loose_tables,
        "loose indexes": loose_indexes,
        "months without a checked key": without_key,
        "months without a primary key": without_primary_key,
    }


ATTACHED = {
    "loose tables": 0,
    "loose indexes": 0,
    "months without a checked key": 0,
    "months without a primary key": 0,
}


def _ids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM crm_tags_event ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def every_load_is_big(monkeypatch):
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    monkeypatch.setattr(importers, "MONTH_MIN_ROWS", 1)


@PATHS
def test_a_later_big_load_rebuilds_only_the_months_it_fills(fast, every_load_is_big, monkeypatch):
    # given a history of two months, loaded in bulk: six orders in January, a visit in February
    monkeypatch.setattr(event_importer, "FAST_EVENTS", fast)
    ann, bob = factories.customer(), factories.customer()
    factories.events(
        [(ann, "order", _at(2024, 1, day), Decimal("5")) for day in range(1, 7)]
        + [(bob, "visit", _at(2024, 2), None)]
    )
    history = {name: file for name, file in _index_files().items() if "p2024" in name}
    assert len(history) == 6  # two months, three indexes each (primary key, customer, covering)
    # when a later big load brings two new months, and one row for January: not more than a fifth
    # of what January holds
    factories.events(
        [(ann, "order", _at(2025, 3), Decimal("7")), (bob, "order", _at(2025, 4), Decimal("1.5"))]
        + [(bob, "visit", _at(2025, 4, 2), None), (ann, "visit", _at(2024, 1, 20), None)]
    )
    # then the history's month that got one row kept its indexes (the row went in through the parent),
    # so did the month the load did not touch, and the new months were built and attached again
    files = _index_files()
    assert {name: files[name] for name in history} == history
    assert sum("p202503" in name or "p202504" in name for name in files) == 6
    assert _layout() == ATTACHED
    # and every row is there once, with its own id, and the totals add up
    ids = _ids()
    assert len(ids) == len(set(ids)) == 11
    assert _stored_totals() == _recounted_totals()
    # an event added later through the parent takes an id after every loaded one
    factories.events([(ann, "visit", _at(2025, 3, 2), None)])
    assert max(_ids()) > max(ids)


@PATHS
def test_a_month_of_the_history_the_load_brings_most_rows_of_is_rebuilt(fast, every_load_is_big, monkeypatch):
    monkeypatch.setattr(event_importer, "FAST_EVENTS", fast)
    ann = factories.customer()
    factories.events([(ann, "order", _at(2024, 1), Decimal("5")), (ann, "visit", _at(2024, 2), None)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_tags_event")
    before = _index_files()
    # the January partition holds one row; a load of three more January rows is most of the month
    factories.events([(ann, "visit", _at(2024, 1, day), None) for day in (2, 3, 4)])
    after = _index_files()
    january = [name for name in before if "p202401" in name]
    february = [name for name in before if "p202402" in name]
    assert all(after[name] != before[name] for name in january)
    assert all(after[name] == before[name] for name in february)
    assert _layout() == ATTACHED
    assert len(_ids()) == len(set(_ids())) == 5
    assert _stored_totals() == _recounted_totals()


@PATHS
def test_a_failure_after_the_months_are_detached_leaves_them_attached_and_unchanged(
    fast, every_load_is_big, monkeypatch
):
    monkeypatch.setattr(event_importer, "FAST_EVENTS", fast)
    ann = factories.customer()
    factories.events([(ann, "order", _at(2024, 1), Decimal("5"))])
    rows_before, files_before = _ids(), _index_files()

    def broken(self):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(month_loads.MonthLoad, "finish", broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        factories.events([(ann, "order", _at(2024, 1, 3), Decimal("1")), (ann, "visit", _at(2024, 5), None)])
    assert _ids() == rows_before
    assert _index_files() == files_before
    assert _layout() == ATTACHED


def test_a_load_below_the_bulk_size_goes_through_the_parent(monkeypatch):
    monkeypatch.setattr(importers, "MONTH_MIN_ROWS", 1)
    ann = factories.customer()
    factories.events([(ann, "order", _at(2024, 1), Decimal("5"))])
    detached = []
    monkeypatch.setattr(month_loads.MonthLoad, "_detach", lambda self, month: detached.append(month))
    factories.events([(ann, "order", _at(2024, 1, 3), Decimal("1"))])
    assert detached == []
    assert len(_ids()) == 2


def test_month_of_finds_each_times_month_and_none_outside_every_month(every_load_is_big):
    ann = factories.customer()
    factories.events([(ann, "order", _at(2024, 1), None), (ann, "order", _at(2024, 3), None)])
    with connection.cursor() as cursor:
        load = month_loads.MonthLoad(cursor)
        load.months = load._months()
    names = [month.name for month in load.months]
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

    def micros(moment):
        return (moment - epoch) // datetime.timedelta(microseconds=1)

    times = [
        _at(2024, 1, 1).replace(hour=0),  # a month's first moment is its own
        _at(2024, 2, 1).replace(hour=0) - datetime.timedelta(microseconds=1),  # January's last
        _at(2024, 2, 10),
        _at(2024, 3, 31),
        _at(1850, 1),
    ]
    found = load.month_of(np.array([micros(t) for t in times], dtype=np.int64))
    assert [names[i] if i >= 0 else None for i in found] == [
        "crm_tags_event_p202401",
        "crm_tags_event_p202401",
        "crm_tags_event_p202402",
        "crm_tags_event_p202403",
        None,
    ]


def _total_index_files() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname, i.relfilenode FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'crm_tags_customereventtotal'::regclass"
        )
        return dict(cursor.fetchall())


@PATHS
def test_a_later_big_load_merges_the_totals_in_place(fast, every_load_is_big, monkeypatch):
    # the fast path merges in place; the staged path's one INSERT … ON CONFLICT keeps every index too
    monkeypatch.setattr(event_importer, "FAST_EVENTS", fast)
    ann, bob = factories.customer(), factories.customer()
    factories.events([(ann, "order", _at(2024, 1), Decimal("5")), (bob, "visit", _at(2024, 2), None)])
    before = _total_index_files()
    # a later load adds to both customers' totals (one of them a new type) and changes their last times
    factories.events(
        [(ann, "order", _at(2025, 3), Decimal("7")), (ann, "visit", _at(2025, 4), None)]
        + [(bob, "visit", _at(2025, 4, 2), None), (bob, "order", _at(2023, 12), Decimal("2.25"))]
    )
    after = _total_index_files()
    # the key and (customer, type) indexes kept their files: the rows were updated in place
    kept = [name for name in before if name != "crm_total_type_last"]
    assert len(kept) == 2 and {name: after[name] for name in kept} == {name: before[name] for name in kept}
    assert set(after) == set(before)
    assert _stored_totals() == _recounted_totals()
