"""Events partitioned by month (crm_tags.partitions): the layout, pruning of windowed rule scans, months
made ahead and rows moved out of the default partition, whole months dropped by retention with every
derived table kept exact, and the in-place conversion both ways."""

import datetime
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection

from crm_tags import partitions, ranks
from crm_tags.models import Event
from crm_tags.retention import events_delete_before
from crm_tags.rules.compiler import compile_rule
from crm_tags.value.purchases import _rebuild, purchase_days_catch_up
from tests.crm_tags import factories
from tests.crm_tags.ranks_reference import recounted_ranks, stored_ranks

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
TODAY = datetime.date(2026, 12, 7)
TRIGGERS = (
    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'crm_tags_event'::regclass AND NOT tgisinternal ORDER BY 1"
)


def _at(year: int, month: int, day: int = 15) -> datetime.datetime:
    return datetime.datetime(year, month, day, 12, tzinfo=UTC)


def _rows(table: str = "crm_tags_event") -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, customer_id, event_type, occurred_at, amount, channel, properties::text "  # noqa: S608
            f"FROM {table} ORDER BY id"
        )
        return cursor.fetchall()


def _where(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM crm_tags_event WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def _recounted_totals() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customer_id, event_type, count(*), count(amount), sum(amount), min(amount), max(amount), "
            "min(occurred_at), max(occurred_at) FROM crm_tags_event GROUP BY 1, 2 ORDER BY 1, 2"
        )
        return cursor.fetchall()


def _stored_totals() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customer_id, event_type, events, amount_count, amount_sum, amount_min, amount_max, first_at, "
            "last_at FROM crm_tags_customereventtotal ORDER BY 1, 2"
        )
        return cursor.fetchall()


def _purchase_days() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM crm_tags_customerpurchasedays ORDER BY customer_id")
        return cursor.fetchall()


def test_the_events_table_is_partitioned_by_month_with_a_default_partition():
    with connection.cursor() as cursor:
        assert partitions.is_partitioned(cursor)
        names = partitions.month_partitions(cursor)
        cursor.execute("SELECT count(*) FROM pg_inherits WHERE inhrelid = %s::regclass", [partitions.DEFAULT])
        assert cursor.fetchone()[0] == 1
    # every month bound is a UTC month
    name = sorted(names)[0]
    assert names[name].startswith("FOR VALUES FROM ('")


def test_an_event_lands_in_its_months_partition_and_one_outside_every_month_in_the_default():
    # given the months of 2025 made
    with connection.cursor() as cursor:
        partitions.ensure_months(cursor, datetime.date(2025, 1, 1), datetime.date(2025, 12, 1))
    person = factories.customer()
    # when events of March 2025 and of 1999 arrive
    factories.events([(person, "order", _at(2025, 3), Decimal("5")), (person, "order", _at(1999, 3), None)])
    old, march = list(Event.objects.order_by("occurred_at").values_list("id", flat=True))
    # then each is where its time says
    assert _where(march) == "crm_tags_event_p202503"
    assert _where(old) == partitions.DEFAULT


def test_maintain_makes_the_months_ahead_and_moves_default_rows_into_their_own_month():
    # given an event of May 2019, in the default partition, with its totals
    person = factories.customer()
    factories.events([(person, "order", _at(2019, 5), Decimal("7")), (person, "visit", _at(2019, 6), None)])
    before, totals = _rows(), _stored_totals()
    # when the beat task runs
    made = partitions.maintain(today=datetime.date(2027, 2, 10))["created"]
    # then the three months after February 2027 exist, May and June 2019 have partitions holding their rows, the
    # default partition is empty, and nothing else changed (the same rows, ids and totals)
    assert {"crm_tags_event_p202704", "crm_tags_event_p202705"} <= set(made)
    assert {"crm_tags_event_p201905", "crm_tags_event_p201906"} <= set(made)
    assert _rows(partitions.DEFAULT) == []
    assert _rows() == before
    assert _stored_totals() == totals == _recounted_totals()
    assert _where(before[0][0]) == "crm_tags_event_p201905"
    # and running it again makes nothing
    assert partitions.maintain(today=datetime.date(2027, 2, 10))["created"] == []


def test_a_30_day_window_scans_only_the_partitions_of_its_window():
    # given two years of months
    with connection.cursor() as cursor:
        partitions.ensure_months(cursor, datetime.date(2025, 1, 1), datetime.date(2026, 12, 1))
    as_of = datetime.datetime(2026, 11, 20, tzinfo=UTC)
    rule = {"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1}
    compiled = compile_rule(rule, as_of=as_of)
    # when Postgres plans the rule's statement
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + compiled.sql, compiled.params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # then its window reads October and November 2026, and no month before the window at all (its
    # check for events after as_of reads only the months after it): cost follows the window, not history
    names = set(partitions.month_partitions(connection.cursor()))
    scanned = {name for name in names if name in plan}
    assert {"crm_tags_event_p202610", "crm_tags_event_p202611"} <= scanned, plan
    assert not {name for name in scanned if name < "crm_tags_event_p202610"}, plan


def test_retention_drops_whole_months_and_keeps_totals_ranks_and_purchase_days_exact():
    # given months from 2024, orders and visits of three customers across them, a ranked rule
    # ("two orders in 90 days") and the purchase days counted
    with connection.cursor() as cursor:
        partitions.ensure_months(cursor, datetime.date(2024, 1, 1), datetime.date(2026, 12, 1))
    people = [factories.customer() for _ in range(3)]
    rows = []
    for number, person in enumerate(people):
        for month in range(1, 13, 1 + number):
            rows.append((person, "order", _at(2024 + month % 3, month, 3 + number), Decimal(10 + month)))
            rows.append((person, "visit", _at(2024, month, 9), None))
    factories.events(rows)
    factories.rule_tag(
        "two-orders", {"event": "order", "agg": "count", "window_days": 90, "op": ">=", "value": 2}
    )
    ranks.sync()
    purchase_days_catch_up(order_type="order", time_zone=django_settings.TIME_ZONE)
    assert stored_ranks()
    kept = [row for row in _rows() if row[3] >= datetime.datetime(2025, 3, 20, tzinfo=UTC)]
    # when retention deletes what is older than 20 March 2025
    result = events_delete_before(before=datetime.datetime(2025, 3, 20, tzinfo=UTC), batch=2)
    # then the months up to February 2025 were dropped whole, the rest of March went row by row,
    # and exactly the younger events are left
    assert result["partitions_dropped"] == 14
    assert _rows() == kept
    assert result["deleted"] == len(rows) - len(kept)
    with connection.cursor() as cursor:
        assert "crm_tags_event_p202502" not in partitions.month_partitions(cursor)
        assert "crm_tags_event_p202503" in partitions.month_partitions(cursor)
    # and every derived table is what recounting the events left gives
    assert _stored_totals() == _recounted_totals()
    assert stored_ranks() == recounted_ranks()
    stored = _purchase_days()
    with connection.cursor() as cursor:
        _rebuild(cursor, "order", django_settings.TIME_ZONE)
    assert stored == _purchase_days()


def test_the_table_converts_back_and_forth_in_place_keeping_rows_ids_triggers_and_progress():
    # given events in three months and one far in the past
    person = factories.customer()
    factories.events(
        [(person, "order", _at(2026, month), Decimal(month)) for month in (9, 10, 11)]
        + [(person, "order", _at(1990, 1), None)]
    )
    rows = _rows()
    with connection.cursor() as cursor:
        cursor.execute(TRIGGERS)
        triggers = cursor.fetchall()
        messages: list[str] = []
        # when the table is turned back into one plain table
        partitions.convert_back(cursor, progress=messages.append)
        # then it is plain, with the same rows and triggers
        assert not partitions.is_partitioned(cursor)
        assert _rows() == rows
        cursor.execute(TRIGGERS)
        assert cursor.fetchall() == triggers
        # when it is converted in place again
        partitions.convert_in_place(cursor, progress=messages.append, today=TODAY)
        # then the months from 1990 to three months ahead exist, the rows are the same, and the triggers too
        assert partitions.is_partitioned(cursor)
        names = partitions.month_partitions(cursor)
        assert {"crm_tags_event_p199001", "crm_tags_event_p202611", "crm_tags_event_p202703"} <= set(names)
        assert _rows() == rows
        cursor.execute(TRIGGERS)
        assert cursor.fetchall() == triggers
    assert any("events copied: 4 of 4" in message for message in messages)
    # and new events continue the ids and still keep the totals (the triggers and keys work)
    factories.events([(person, "order", _at(2026, 11, 20), Decimal("1"))])
    assert _rows()[-1][0] > rows[-1][0]
    assert _stored_totals() == _recounted_totals()


def test_the_beat_runs_the_partition_upkeep_and_its_task_makes_the_months_ahead(settings):
    from crm_tags import tasks

    entry = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("maintain_event_partitions")
    ]
    assert entry and entry[0]["schedule"] <= 86400
    with connection.cursor() as cursor:
        cursor.execute(
            f"DROP TABLE {partitions.partition_name(partitions.month_floor(datetime.datetime.now(UTC).date()))}"
        )
    made = tasks.maintain_event_partitions()
    assert made == [partitions.partition_name(partitions.month_floor(datetime.datetime.now(UTC).date()))]


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "staged path"])
def test_a_bulk_load_makes_the_months_of_its_rows_first_so_none_lands_in_the_default(fast, monkeypatch):
    from crm_tags import importers
    from crm_tags.importers import events as event_importer

    # given a bulk load (every load counts as one here) of events from 2021 and 2022, and one in 1850
    monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)
    monkeypatch.setattr(event_importer, "FAST_EVENTS", fast)
    person = factories.customer()
    factories.events(
        [(person, "order", _at(2021, 2), Decimal("1")), (person, "visit", _at(2022, 7), None)]
        + [(person, "visit", _at(1850, 1), None)]
    )
    # then the months from February 2021 to July 2022 exist and hold their rows; 1850 is beyond the
    # months a load makes, so it waits in the default partition
    with connection.cursor() as cursor:
        names = set(partitions.month_partitions(cursor))
    assert {partitions.partition_name(day) for day in partitions.months(_at(2021, 2), _at(2022, 7))} <= names
    assert "crm_tags_event_p185001" not in names
    placed = sorted(_where(row[0]) for row in _rows())
    assert placed == [partitions.DEFAULT, "crm_tags_event_p202102", "crm_tags_event_p202207"]
    assert _stored_totals() == _recounted_totals()
