"""Replica reads: dashboards, report jobs and exports read from a streaming replica, explicitly scoped.

With `DATABASE_REPLICA_URL` set (settings: the `replica` alias), code that only reads and may show data a
few seconds old runs inside `replica_reads()`. On entering the scope the replica is asked how far behind
it is; when it answers and is at most `REPLICA_MAX_LAG_SECONDS` behind, the ORM's reads in the scope go to
it (this router) and raw SQL goes to it through `read_connection`. Everything else stays on the primary:

- writes, always (`db_for_write` is the primary's);
- reads while the primary's connection is inside a transaction (`atomic`): they belong to a write and must
  see its own rows; a request or task that has not opened one is on autocommit;
- reads outside the scope, the tag compiler's among them (its statements run on `django.db.connection`,
  the primary, whatever scope they are called in), and reads inside `primary_reads()`.

A replica that is down, not streaming or too far behind makes the scope read the primary instead, and
says so: `ReadSource.note()` is "live data from the primary" or "as of 10:42:05, 3 s behind", and a
warning is logged once per change of state (not once per request).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.utils import timezone
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)

REPLICA_ALIAS = "replica"
T = TypeVar("T")

# Seconds the replica is behind: 0 when it has replayed all it received (an idle primary sends nothing,
# so the last replayed commit's time stops moving: without this test an idle pair would look ever later);
# otherwise the age of the last commit it replayed. NULL (unknown) when it has replayed no commit yet.
LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_receive_lsn() IS NOT NULL
                 AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
"""


@dataclass(frozen=True)
class ReadSource:
    """Where a scope's reads go, and how old the data there is."""

    alias: str
    lag_seconds: float | None = None  # the replica's lag; None on the primary (live)
    reason: str = ""  # why the primary serves a scope that asked for the replica ("" when it does not)
    state: str = ""  # that reason's kind: unreachable, not_in_recovery, nothing_replayed, lagging
    checked_at: dt.datetime | None = None

    @property
    def on_replica(self) -> bool:
        return self.alias != DEFAULT_DB_ALIAS

    def as_of(self) -> dt.datetime:
        """The time the data read here is current as of: now, less the replica's lag."""
        now = self.checked_at or timezone.now()
        return now - dt.timedelta(seconds=self.lag_seconds or 0)

    def note(self) -> str:
        """What a page or an answer says about its data's age."""
        if not self.on_replica:
            return _("live data from the primary")
        return _("as of %(time)s, %(lag)s s behind") % {
            "time": timezone.localtime(self.as_of()).strftime("%H:%M:%S"),
            "lag": int(round(self.lag_seconds or 0)),
        }

    def as_dict(self) -> dict[str, Any]:
        """The fields an API answer or a chart payload carries."""
        return {
            "data_source": "replica" if self.on_replica else "primary",
            "replica_lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "data_note": self.note(),
        }


PRIMARY = ReadSource(DEFAULT_DB_ALIAS)
_SCOPE: contextvars.ContextVar[ReadSource | None] = contextvars.ContextVar("replica_reads", default=None)
# The last kind of fallback logged ("" once the replica serves again), and after a failed connection the
# monotonic time before which the replica is not tried again (so a replica that times out costs one
# request its connect timeout, not every request).
_last_state: dict[str, Any] = {}


def replica_configured() -> bool:
    return REPLICA_ALIAS in connections.settings


def retry_seconds() -> float:
    return float(getattr(settings, "REPLICA_RETRY_SECONDS", 10))


def max_lag_seconds() -> float:
    return float(getattr(settings, "REPLICA_MAX_LAG_SECONDS", 30))


def _log_state(source: ReadSource) -> None:
    """A warning when reads fall back to the primary: once per kind of fallback, until the replica serves
    again (a lagging replica's lag changes on every check; the log should not)."""
    if _last_state.get("state", "") == source.state:
        return
    previous = _last_state.get("state")
    _last_state["state"] = source.state
    if source.state:
        log.warning("replica reads fall back to the primary: %s", source.reason)
    elif previous:
        log.info("replica reads served by the replica again")


def replica_source() -> ReadSource:
    """Ask the replica how far behind it is; the primary (with the reason) when it cannot serve."""
    if not replica_configured() or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return PRIMARY  # no replica, or inside a write's transaction: the reads go to the primary anyway
    now = timezone.now()
    if time.monotonic() < _last_state.get("down_until", 0.0):
        return ReadSource(
            DEFAULT_DB_ALIAS, reason=_last_state["down_reason"], state="unreachable", checked_at=now
        )
    replica = connections[REPLICA_ALIAS]
    try:
        with replica.cursor() as cursor:
            cursor.execute(LAG_SQL)
            in_recovery, lag = cursor.fetchone()
    except DatabaseError as exc:
        replica.close()  # a half-open connection must not serve the next scope
        reason = f"replica unreachable ({exc.__class__.__name__}: {str(exc).strip()[:200]})"
        _last_state.update(down_until=time.monotonic() + retry_seconds(), down_reason=reason)
        source = ReadSource(DEFAULT_DB_ALIAS, reason=reason, state="unreachable", checked_at=now)
    else:
        if not in_recovery:
            reason = "replica is not in recovery (promoted, or not a standby)"
            source = ReadSource(DEFAULT_DB_ALIAS, reason=reason, state="not_in_recovery", checked_at=now)
        elif lag is None:
            reason = "replica has replayed nothing yet"
            source = ReadSource(DEFAULT_DB_ALIAS, reason=reason, state="nothing_replayed", checked_at=now)
        elif lag > max_lag_seconds():
            reason = f"replica {lag:.1f} s behind (limit {max_lag_seconds():g} s)"
            source = ReadSource(DEFAULT_DB_ALIAS, reason=reason, state="lagging", checked_at=now)
        else:
            source = ReadSource(REPLICA_ALIAS, lag_seconds=max(0.0, lag), checked_at=now)
    _log_state(source)
    return source


@contextlib.contextmanager
def replica_reads() -> Iterator[ReadSource]:
    """Reads in this block may come from the replica (see the module's docstring); yields the source.
    Nested scopes keep the outer one's choice, so one dashboard reads one source."""
    current = _SCOPE.get()
    if current is not None:
        yield current
        return
    token = _SCOPE.set(replica_source())
    try:
        yield _SCOPE.get()
    finally:
        _SCOPE.reset(token)


@contextlib.contextmanager
def primary_reads() -> Iterator[None]:
    """Reads in this block go to the primary, whatever scope surrounds it."""
    token = _SCOPE.set(PRIMARY)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def replica_reads_iter(rows: Callable[[], Iterable[T]]) -> Iterator[T]:
    """A streamed answer's rows read inside `replica_reads()` (a response's body is produced after the view
    returned, outside any scope the view opened)."""
    with replica_reads():
        yield from rows()


def current_source() -> ReadSource:
    """The source of the current scope (the primary outside one)."""
    return _SCOPE.get() or PRIMARY


def read_alias() -> str:
    """The alias a read issued now goes to."""
    source = _SCOPE.get()
    if source is None or not source.on_replica:
        return DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS  # a write's transaction reads its own rows
    return source.alias


class _ReadConnection:
    """Like `django.db.connection`, but the connection of `read_alias()` (for raw SQL that only reads)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(connections[read_alias()], name)


read_connection: Any = _ReadConnection()


class ReplicaRouter:
    """Reads inside `replica_reads()` to the replica when it serves; everything else to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        alias = read_alias()
        return None if alias == DEFAULT_DB_ALIAS else alias

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # one database, two copies of it

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS  # a standby is read-only; it replays the primary's migrations
