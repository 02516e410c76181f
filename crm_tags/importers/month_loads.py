"""A big load into the partitioned events table, month by month, so that its cost follows the load and
not the history: each month the load fills (at least MONTH_MIN_ROWS of its rows, and more than a fifth
of what the month holds) is detached, loses its indexes and keys, takes its rows straight from COPY, gets its indexes and primary
key built once, and is attached again (Postgres then checks its foreign key and bounds, over that month
only). Every other month, and every index over the years before, is left alone: the plain table's bulk
path instead drops the table's indexes and rebuilds them over every row it holds."""

# SQL is assembled from partition and constraint names read from the catalog; every value is a parameter.
# ruff: noqa: S608

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from crm_tags import partitions
from crm_tags.importers.bulk_indexes import BULK_MIN_ROWS
from crm_tags.importers.sql_session import _local_settings, _step

log = logging.getLogger(__name__)

# a month takes its rows directly (detached) when they are at least this many, and more than a fifth of
# the rows it holds; fewer go through the parent, into the month's indexes row by row
MONTH_MIN_ROWS = 20_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


@dataclass
class Month:
    name: str
    bound: str  # its partition bound, as the catalog gives it ("FOR VALUES FROM (…) TO (…)")
    low: datetime
    high: datetime
    indexes: list[str] = field(default_factory=list)  # definitions, recreated before the attach
    primary_key: tuple[str, str] | None = None


class MonthLoad:
    """The months of a bulk load (see the module's doc): `detach` the ones worth loading directly,
    write their rows with `reserve_ids` ids straight into them, the rest through the parent; `finish`
    builds and attaches them again."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.months: list[Month] = []
        self.detached: list[Month] = []

    def plan(self, at_us: np.ndarray) -> tuple[list[tuple[Month, np.ndarray]], np.ndarray]:
        """For the load's times (Unix µs; their months made already): the months it fills, detached,
        each with the positions of its rows, and the positions of the rows that go through the parent."""
        self.months = self._months()
        month = self.month_of(at_us)
        numbers, counts = np.unique(month, return_counts=True)
        chosen = self.detach(dict(zip(numbers.tolist(), counts.tolist(), strict=True)))
        direct = [(self.months[number], np.flatnonzero(month == number)) for number in chosen]
        return direct, np.flatnonzero(~np.isin(month, chosen))

    def plan_counts(self, counts: dict[datetime, int]) -> list[Month]:
        """The same from the load's rows counted by the start of their UTC month (a load staged in SQL):
        the months it fills, detached."""
        self.months = self._months()
        number = {month.low: index for index, month in enumerate(self.months)}
        by_number = {number[start]: rows for start, rows in counts.items() if start in number}
        return [self.months[index] for index in self.detach(by_number)]

    def _months(self) -> list[Month]:
        found = [
            Month(name, bound, *partitions.month_span(name))
            for name, bound in partitions.month_partitions(self.cursor).items()
        ]
        return sorted(found, key=lambda month: month.low)

    def month_of(self, at_us: np.ndarray) -> np.ndarray:
        """Each time's month (its index in `months`), -1 where no month partition holds it (the
        default partition's rows)."""
        if not self.months:
            return np.full(len(at_us), -1, dtype=np.int64)
        lows = np.array([_micros(month.low) for month in self.months], dtype=np.int64)
        highs = np.array([_micros(month.high) for month in self.months], dtype=np.int64)
        index = np.searchsorted(lows, at_us, side="right") - 1
        inside = (index >= 0) & (at_us < highs[np.maximum(index, 0)])
        return np.where(inside, index, -1)

    def detach(self, counts: dict[int, int]) -> list[int]:
        """Detach the months (`counts`: rows of the load by month number, -1 for none) worth loading
        directly and drop their indexes and keys; returns their numbers."""
        self.cursor.execute(
            "SELECT c.relname, greatest(c.reltuples, 0) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [partitions.PARENT],
        )
        held = dict(self.cursor.fetchall())
        chosen = []
        for number, rows in sorted(counts.items()):
            if number < 0 or rows < MONTH_MIN_ROWS or rows <= held.get(self.months[number].name, 0) / 5:
                continue
            month = self.months[number]
            self._detach(month)
            self.detached.append(month)
            chosen.append(number)
        return chosen

    def _detach(self, month: Month) -> None:
        cursor = self.cursor
        cursor.execute(f"ALTER TABLE {partitions.PARENT} DETACH PARTITION {month.name}")
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY i.relname",
            [month.name],
        )
        indexes = cursor.fetchall()
        month.indexes = [definition for _name, definition in indexes]
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype IN ('f', 'p') ORDER BY contype, conname",
            [month.name],
        )
        for name, definition, kind in cursor.fetchall():
            if kind == "p":
                month.primary_key = (name, definition)
            # the foreign key comes back with the attach, which checks it over this month
            cursor.execute(f'ALTER TABLE {month.name} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        # the month's bounds as a check (over the rows it holds already, mostly none): the attach then
        # needs no scan of its own to prove every row belongs to the month
        cursor.execute(
            f"ALTER TABLE {month.name} ADD CONSTRAINT {month.name}_bound "
            "CHECK (occurred_at >= %s AND occurred_at < %s)",
            [month.low, month.high],
        )

    def reserve_ids(self, count: int) -> int:
        """The first of `count` consecutive event ids taken from the events' sequence (rows written
        into a detached month get no default). No other writer can take ids meanwhile: detaching holds
        the events table exclusively."""
        self.cursor.execute(
            "SELECT setval(s, nextval(s) + %s - 1) - %s + 1 FROM pg_get_serial_sequence(%s, 'id') s",
            [count, count, partitions.PARENT],
        )
        return self.cursor.fetchone()[0]

    def finish(self) -> None:
        cursor = self.cursor
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for month in self.detached:
            with _step(f"rebuild and attach {month.name}"):
                for definition in month.indexes:
                    cursor.execute(definition)
                if month.primary_key:
                    name, definition = month.primary_key
                    cursor.execute(f'ALTER TABLE {month.name} ADD CONSTRAINT "{name}" {definition}')
                # the parent's indexes and key take the month's as theirs; its foreign key is checked here
                # (one join of the month's rows with the customers: compiling it would cost more)
                with _local_settings(cursor, jit="off"):
                    cursor.execute(
                        f"ALTER TABLE {partitions.PARENT} ATTACH PARTITION {month.name} {month.bound}"
                    )
                cursor.execute(f"ALTER TABLE {month.name} DROP CONSTRAINT {month.name}_bound")
        if self.detached:
            log.info(
                "bulk load into %s months of %s: their indexes rebuilt, the others untouched",
                len(self.detached),
                partitions.PARENT,
            )


@contextmanager
def by_month(cursor: Any, staged: int) -> Iterator[MonthLoad | None]:
    """A MonthLoad for a load of at least BULK_MIN_ROWS rows (else None: rows go through the parent,
    into its indexes); on leaving, the months it detached are built and attached again."""
    if staged < BULK_MIN_ROWS:
        yield None
        return
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred key check pending on a month it detaches
    load = MonthLoad(cursor)
    yield load
    load.finish()
