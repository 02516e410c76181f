"""Customer events partitioned by month (declarative range partitioning on `occurred_at`).

`crm_tags_event` is a partitioned table: one partition per calendar month (UTC bounds), named
`crm_tags_event_pYYYYMM`, and a default partition for rows outside every month created so far. Its
indexes, primary key (`id`, `occurred_at`), foreign key and statement triggers live on the parent and
apply to every partition. What that buys:

- a windowed rule leaf ("orders in the last 30 days") scans only the partitions its window touches
  (partition pruning: the compiler binds the window's bounds as constants);
- retention drops whole months (`drop_months_before`) instead of deleting row by row, keeping the
  lifetime totals, event ranks and purchase days exact for the customers whose events went;
- each month's indexes stay the size of one month.

`maintain` (a beat task) creates the months ahead of time and moves rows that landed in the default
partition (a back-dated import, say) into their month's own partition. `convert_in_place` and
`convert_back` turn an existing table into this layout and back (migration 0017), with progress.
"""

# SQL is assembled from fixed fragments and partition names made here; every value is a parameter.
# ruff: noqa: S608

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from django.db import connection, transaction

log = logging.getLogger(__name__)

PARENT = "crm_tags_event"
DEFAULT = "crm_tags_event_default"
AHEAD_MONTHS = 3
# months made for a load's times reach this far back and ahead at most: a mistyped year stays in the
# default partition instead of making a thousand empty months
YEARS_BACK = 30
YEARS_AHEAD = 2
# rows copied per statement while converting, so a big table reports its progress as it goes
COPY_CHUNK = 1_000_000


def month_floor(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def months(first: date, last: date) -> list[date]:
    """The first days of the months from `first`'s month to `last`'s, both included (dates or times)."""
    found, day, end = [], month_floor(first), month_floor(last)
    while day <= end:
        found.append(day)
        day = next_month(day)
    return found


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day.year:04d}{day.month:02d}"


def _bound(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def month_span(name: str) -> tuple[datetime, datetime]:
    """Where the month partition called `name` starts and ends (UTC)."""
    day = date(int(name[-6:-2]), int(name[-2:]), 1)
    end = next_month(day)
    return datetime(day.year, day.month, 1, tzinfo=UTC), datetime(end.year, end.month, 1, tzinfo=UTC)


def estimate(cursor, table: str) -> tuple[bool, float]:
    """Whether `table` is partitioned, and the planner's estimate of its rows (a partitioned table's
    are its partitions': the parent keeps no estimate of its own)."""
    cursor.execute(
        "SELECT p.relkind = 'p', coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_class p "
        "LEFT JOIN pg_inherits i ON i.inhparent = p.oid "
        "JOIN pg_class c ON c.oid = CASE WHEN p.relkind = 'p' THEN i.inhrelid ELSE p.oid END "
        "WHERE p.oid = %s::regclass GROUP BY p.relkind",
        [table],
    )
    row = cursor.fetchone()
    return (bool(row[0]), float(row[1])) if row else (False, 0.0)


def is_partitioned(cursor) -> bool:
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", [PARENT])
    row = cursor.fetchone()
    return bool(row and row[0])


def month_partitions(cursor) -> dict[str, tuple[str, str]]:
    """The month partitions by name, each with its bound expression."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass AND c.relname <> %s "
        "ORDER BY c.relname",
        [PARENT, DEFAULT],
    )
    return dict(cursor.fetchall())


def _create_month(cursor, day: date) -> None:
    """One month's partition. Rows of that month waiting in the default partition move into it first
    (Postgres refuses a new partition whose range the default partition still holds rows of); moving
    them between partitions fires none of the parent's triggers: the events themselves don't change."""
    name, low, high = partition_name(day), _bound(day), _bound(next_month(day))
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE occurred_at >= %s AND occurred_at < %s)", [low, high]
    )
    if not cursor.fetchone()[0]:
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)", [low, high])
        return
    cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
    cursor.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved",
        [low, high],
    )
    # the check lets ATTACH skip its scan of the new partition
    cursor.execute(
        f"ALTER TABLE {name} ADD CONSTRAINT {name}_bound CHECK (occurred_at >= %s AND occurred_at < %s)",
        [low, high],
    )
    cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [low, high])
    cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bound")


def ensure_months(cursor, first: date, last: date) -> list[str]:
    """Create the missing month partitions from `first`'s month to `last`'s; returns the names created."""
    existing = month_partitions(cursor)
    created = []
    for day in months(first, last):
        if partition_name(day) not in existing:
            _create_month(cursor, day)
            created.append(partition_name(day))
    return created


def ensure_range(cursor, low: datetime, high: datetime, *, today: date | None = None) -> list[str]:
    """The month partitions for times from `low` to `high` (within YEARS_BACK and YEARS_AHEAD of today):
    a bulk load, which holds the events table exclusively anyway, makes them before writing so every
    row lands in its own month. Returns the names created."""
    if not is_partitioned(cursor):
        return []
    today = today or datetime.now(UTC).date()
    first = max(month_floor(low.astimezone(UTC)), date(today.year - YEARS_BACK, 1, 1))
    last = min(month_floor(high.astimezone(UTC)), date(today.year + YEARS_AHEAD, 12, 1))
    return ensure_months(cursor, first, last) if first <= last else []


def maintain(*, ahead: int = AHEAD_MONTHS, today: date | None = None) -> dict[str, list[str]]:
    """The beat task's body: months from this one to `ahead` months on exist, and every month that
    rows in the default partition belong to gets its own partition (their rows moved into it)."""
    today = today or datetime.now(UTC).date()
    last = month_floor(today)
    for _ in range(ahead):
        last = next_month(last)
    with transaction.atomic(), connection.cursor() as cursor:
        if not is_partitioned(cursor):
            return {"created": []}
        # waits at most a few seconds for readers of the events: the next run tries again
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        created = ensure_months(cursor, today, last)
        cursor.execute(f"SELECT min(occurred_at), max(occurred_at) FROM {DEFAULT}")
        low, high = cursor.fetchone()
        if low is not None:
            created += ensure_range(cursor, low, high, today=today)
    if created:
        log.info("events partitions created: %s", ", ".join(created))
    return {"created": created}


# The lifetime totals of the given (customer, type) pairs recomputed from the events left: rewritten
# where events are left, deleted where none are (as the retention's row deletes do per type).
RECOMPUTE_PAIRS = f"""
    WITH pairs AS (SELECT * FROM unnest(%(customers)s::bigint[], %(types)s::text[]) AS p(customer_id, event_type)),
    fresh AS (
      SELECT p.customer_id, p.event_type, a.*
      FROM pairs p CROSS JOIN LATERAL (
        SELECT count(*) AS n, count(e.amount) AS ac, sum(e.amount) AS s, min(e.amount) AS mn,
               max(e.amount) AS mx, min(e.occurred_at) AS first, max(e.occurred_at) AS last
        FROM {PARENT} e WHERE e.customer_id = p.customer_id AND e.event_type = p.event_type) a),
    emptied AS (
      DELETE FROM crm_tags_customereventtotal t USING fresh
      WHERE fresh.n = 0 AND t.customer_id = fresh.customer_id AND t.event_type = fresh.event_type
      RETURNING 1)
    INSERT INTO crm_tags_customereventtotal
      (customer_id, event_type, events, amount_count, amount_sum, amount_min, amount_max, first_at, last_at)
    SELECT customer_id, event_type, n, ac, s, mn, mx, first, last FROM fresh WHERE n > 0
    ON CONFLICT (customer_id, event_type) DO UPDATE SET
      events = EXCLUDED.events, amount_count = EXCLUDED.amount_count, amount_sum = EXCLUDED.amount_sum,
      amount_min = EXCLUDED.amount_min, amount_max = EXCLUDED.amount_max,
      first_at = EXCLUDED.first_at, last_at = EXCLUDED.last_at
"""


def drop_months_before(before: datetime) -> dict[str, int]:
    """Drop every month partition that ends on or before `before`, one month per transaction, and keep
    what is derived from events exact for the customers whose events went: their lifetime totals,
    event ranks and purchase days are recomputed from the events left (a dropped partition fires no
    delete trigger). Returns the months and events dropped."""
    dropped = events = 0
    with connection.cursor() as cursor:
        if not is_partitioned(cursor):
            return {"months": 0, "events": 0}
        names = [name for name in sorted(month_partitions(cursor)) if month_span(name)[1] <= before]
    for name in names:
        with transaction.atomic(), connection.cursor() as cursor:
            # no writer adds or moves events of these customers between the drop and the recount
            cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred key check pending on the month
            cursor.execute(
                f"SELECT count(*), coalesce(array_agg(customer_id), '{{}}'), coalesce(array_agg(event_type), '{{}}') "
                f"FROM (SELECT customer_id, event_type, count(*) AS n FROM {name} GROUP BY 1, 2) p"
            )
            pairs, customers, types = cursor.fetchone()
            cursor.execute(f"SELECT count(*) FROM {name}")
            rows = cursor.fetchone()[0]
            cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
            if pairs:
                cursor.execute(RECOMPUTE_PAIRS, {"customers": customers, "types": types})
                cursor.execute("SELECT crm_tags_refresh_ranks(%s::bigint[], %s::text[])", [customers, types])
                cursor.execute(
                    "SELECT crm_tags_refresh_purchase_days(array_agg(DISTINCT c)) FROM unnest(%s::bigint[], "
                    "%s::text[]) AS p(c, t) JOIN crm_tags_purchasedaysupkeep u ON u.id = 1 AND u.event_type = p.t "
                    "HAVING count(*) > 0",
                    [customers, types],
                )
        dropped += 1
        events += rows
        log.info("retention: events partition %s dropped (%s events)", name, rows)
    return {"months": dropped, "events": events}


# -- conversion (migration 0017) ---------------------------------------------------------------


def _definitions(cursor, table: str) -> dict[str, list]:
    """What the table carries besides its columns: triggers, secondary indexes, foreign keys, and its
    identity sequence's position."""
    cursor.execute(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
        "ORDER BY tgname",
        [table],
    )
    triggers = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY i.relname",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype = 'f' ORDER BY conname",
        [table],
    )
    keys = cursor.fetchall()
    cursor.execute(f"SELECT last_value, is_called FROM {table}_id_seq")
    sequence = list(cursor.fetchone())
    return {"triggers": triggers, "indexes": indexes, "keys": keys, "sequence": sequence}


def _rebuild(
    cursor, *, partitioned: bool, progress: Callable[[str], None], today: date | None = None
) -> None:
    """Rebuild the events table in the other layout, rows, ids, indexes, keys and triggers unchanged."""
    old = f"{PARENT}_old"
    cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred key check pending on the old table
    found = _definitions(cursor, PARENT)
    cursor.execute(f"SELECT min(occurred_at), max(occurred_at), max(id), count(*) FROM {PARENT}")
    low, high, last_id, total = cursor.fetchone()
    cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {old}")
    cursor.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {PARENT}_pkey TO {old}_pkey")
    for name, _definition in found["indexes"]:
        cursor.execute(f"ALTER INDEX {name} RENAME TO {name}_old")
    cursor.execute(f"ALTER TABLE {old} ALTER COLUMN id DROP IDENTITY")  # frees the sequence's name
    layout = " PARTITION BY RANGE (occurred_at)" if partitioned else ""
    cursor.execute(f"CREATE TABLE {PARENT} (LIKE {old} INCLUDING DEFAULTS){layout}")
    cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
    cursor.execute(f"SELECT setval('{PARENT}_id_seq', %s, %s)", found["sequence"])
    if partitioned:
        cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {PARENT} DEFAULT")
        today = today or datetime.now(UTC).date()
        last = month_floor(max(today, high.date()) if high else today)
        for _ in range(AHEAD_MONTHS):
            last = next_month(last)
        ensure_months(cursor, low.date() if low else today, last)
    copied = 0
    step = COPY_CHUNK
    start = 0
    while last_id is not None and start <= last_id:
        cursor.execute(
            f"INSERT INTO {PARENT} SELECT * FROM {old} WHERE id >= %s AND id < %s", [start, start + step]
        )
        copied += cursor.rowcount
        start += step
        progress(f"events copied: {copied:,} of {total:,}")
    key = "(id, occurred_at)" if partitioned else "(id)"
    cursor.execute(f"ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY {key}")
    for _name, definition in found["indexes"]:
        cursor.execute(definition.replace(" ON ONLY ", " ON "))
        progress(f"index built: {_name}")
    for name, definition in found["keys"]:
        cursor.execute(f"ALTER TABLE {PARENT} ADD CONSTRAINT {name} {definition}")
    cursor.execute(f"DROP TABLE {old}")  # its triggers go with it
    for definition in found["triggers"]:
        cursor.execute(definition)
    cursor.execute(f"ANALYZE {PARENT}")
    progress(f"events table {'partitioned by month' if partitioned else 'unpartitioned'}: {copied:,} rows")


def convert_in_place(
    cursor, progress: Callable[[str], None] = log.info, *, today: date | None = None
) -> None:
    """Turn a plain events table into the partitioned layout (does nothing if it already is)."""
    if not is_partitioned(cursor):
        _rebuild(cursor, partitioned=True, progress=progress, today=today)


def convert_back(cursor, progress: Callable[[str], None] = log.info) -> None:
    """Turn the partitioned events table back into one plain table (the migration's reverse)."""
    if is_partitioned(cursor):
        _rebuild(cursor, partitioned=False, progress=progress)
