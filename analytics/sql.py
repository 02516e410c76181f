"""Building blocks for the dashboards' aggregate SQL: bound-parameter WHERE clauses and time buckets."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from django.db import transaction

from config.db_router import read_alias, read_connection


class Where:
    """AND-ed conditions with named bound parameters (never string-formatted values)."""

    def __init__(self, prefix: str = "w") -> None:
        self.parts: list[str] = []
        self.params: dict[str, Any] = {}
        self._prefix = prefix

    def add(self, sql: str, *values: Any) -> Where:
        """`sql` holds `{}` placeholders, one per value: `w.add("t.team_id = {}", 3)`."""
        names = []
        for value in values:
            name = f"{self._prefix}{len(self.params)}"
            self.params[name] = value
            names.append(f"%({name})s")
        self.parts.append(sql.format(*names))
        return self

    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "TRUE"


def fetch_all(sql: str, params: dict[str, Any]) -> list[tuple]:
    """Run one aggregate statement and return its (already small) result rows (on the replica inside
    `replica_reads()`, see config/db_router.py)."""
    with read_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def bucket_series_sql(grain_param: str = "grain") -> str:
    """A dense series of bucket start dates from %(date_from)s to %(date_to)s (SQL fragment)."""
    return (
        f"SELECT generate_series(date_trunc(%({grain_param})s, %(date_from)s::timestamp),"
        f" %(date_to)s::timestamp, ('1 ' || %({grain_param})s)::interval)::date AS bucket"
    )


def bucket_dates(date_from: dt.date, date_to: dt.date, grain: str) -> list[dt.date]:
    """The bucket start dates Postgres' date_trunc gives for a range (to fill gaps in grouped results)."""
    if grain == "day":
        start = date_from
    elif grain == "week":
        start = date_from - dt.timedelta(days=date_from.weekday())
    else:
        start = date_from.replace(day=1)
    out = []
    current = start
    while current <= date_to:
        out.append(current)
        if grain == "day":
            current += dt.timedelta(days=1)
        elif grain == "week":
            current += dt.timedelta(days=7)
        else:
            current = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


_MEMO: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar("analytics_memo", default=None)


@contextlib.contextmanager
def shared_results() -> Iterator[None]:
    """While computing one dashboard, charts that need the same aggregate run it once (see `memoized`)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def memoized(key: Any, compute: Callable[[], Any]) -> Any:
    """`compute()`, or its result from earlier in the same `shared_results()` block."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


_PLANNED = contextvars.ContextVar("analytics_planned", default=False)


@contextlib.contextmanager
def dashboard_transaction() -> Iterator[None]:
    """One transaction for a dashboard's (or a chart's) queries, with JIT compilation off.

    The aggregates are estimated expensive enough for Postgres to JIT-compile them, which costs more
    (hundreds of ms) than running them; SET LOCAL keeps the setting to this transaction.
    """
    if _PLANNED.get():
        yield
        return
    token = _PLANNED.set(True)
    try:
        # on the connection the reads go to: the replica's inside `replica_reads()` (a transaction on the
        # primary's would send them to the primary, see config/db_router.py)
        alias = read_alias()
        with transaction.atomic(using=alias), transaction.get_connection(alias).cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            yield
    finally:
        _PLANNED.reset(token)
