"""The purchase summary the value fit reads, from per-customer purchase days kept exact instead of from
every order.

`crm_tags_customerpurchasedays` holds, per customer, their order events counted by local day (orders of
one day are one purchase, their amounts summed): first and last day, purchase days, orders, total and
first day's spend, last order time. Its invariant: the row of every customer without an order event newer
than the upkeep's watermark (an event id) is computed from all their current order events (no row: no
orders). What keeps it:

- inserts (imports, the API) need nothing: their events get ids above the watermark, so their customers
  are read from their events until `purchase_days_catch_up` recomputes them and moves the watermark on.
  The catch-up takes the events' SHARE lock, so no writer is in flight: every id up to the new watermark
  belongs to a committed event (ids are drawn inside the inserting statement, which holds the table's
  ROW EXCLUSIVE lock), and nothing is missed;
- deletes and updates (retention, erasure, a merge or unmerge moving events, a customer's deletion):
  statement triggers recompute the touched customers in the same transaction (migration 0016);
- TRUNCATE empties the table and resets the watermark; a change of the order event type or time zone
  (settings) rebuilds it at the next catch-up.

`purchase_summary_arrays` then reads one row per buyer: from the table for customers whose last order is
at or before `as_of` and who have no newer event, and from their events (the per-day grouping the table
replaces) for the others: the customers of the day's imports, or, for a back-test, everyone who bought
after that day. Both give the numbers `crm_tags.value.summary.purchase_summary` gives (see
tests/crm_tags/test_value_purchases.py).
"""

import datetime
import logging

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from crm_tags.partitions import estimate

log = logging.getLogger(__name__)

# more events newer than the watermark than this share of the table (and this many): rebuilt by one grouping
REBUILD_SHARE = 0.25
REBUILD_MIN_EVENTS = 1_000_000

SUMMARY_COLUMNS = (
    "customer_id",
    "frequency",
    "recency_days",
    "age_days",
    "monetary",
    "days_since_last",
    "orders",
    "spent",
)

_ENSURE_UPKEEP = (
    "INSERT INTO crm_tags_purchasedaysupkeep (id, event_type, time_zone, watermark) "
    "VALUES (1, '', '', 0) ON CONFLICT (id) DO NOTHING"
)

# every buyer's purchase days from the events (a rebuild); as CREATE TABLE AS, Postgres may run it in
# parallel, which it never does for an INSERT … SELECT
_REBUILD_SQL = """
CREATE TEMP TABLE crm_purchase_days_rebuilt ON COMMIT DROP AS
WITH daily AS (
    SELECT customer_id, (occurred_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS orders,
           COALESCE(sum(amount), 0) AS spent, max(occurred_at) AS last_at
    FROM crm_tags_event WHERE event_type = %(type)s GROUP BY customer_id, day
), marked AS (
    SELECT *, min(day) OVER (PARTITION BY customer_id) AS first FROM daily
)
SELECT customer_id, min(first) AS first_day, max(day) AS last_day, count(*)::int AS days,
       sum(orders) AS orders, sum(spent) AS spent, sum(spent) FILTER (WHERE day = first) AS first_day_spent,
       max(last_at) AS last_at
FROM marked GROUP BY customer_id
"""

# One row per buyer up to as_of (spend summed exactly, as numeric). {late} names the customers read from
# their events; {kept} adds everyone else's purchase days.
_SUMMARY_SQL = """
WITH {late}daily AS (
    SELECT customer_id, (occurred_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS orders,
           COALESCE(sum(amount), 0) AS spent
    FROM crm_tags_event
    WHERE event_type = %(type)s AND occurred_at <= %(as_of)s{only_late}
    GROUP BY customer_id, day
), marked AS (
    SELECT *, min(day) OVER (PARTITION BY customer_id) AS first FROM daily
), counted AS (
    SELECT customer_id, count(*) AS days, min(first) AS first_day, max(day) AS last_day, sum(orders) AS orders,
           sum(spent) AS spent, sum(spent) FILTER (WHERE day = first) AS first_day_spent
    FROM marked GROUP BY customer_id{kept}
)
SELECT customer_id::int8, (days - 1)::int8, (last_day - first_day)::int8, (%(day)s::date - first_day)::int8,
       (CASE WHEN days > 1 THEN (spent - first_day_spent) / (days - 1) ELSE 0 END)::float8,
       (%(day)s::date - last_day)::int8, orders::int8, spent::float8
FROM counted
"""
# the customers with an order event newer than the watermark, or a last order after as_of
_LATE = """dirty AS MATERIALIZED (
    SELECT DISTINCT customer_id FROM crm_tags_event WHERE id > %(mark)s AND event_type = %(type)s
), late AS MATERIALIZED (
    SELECT customer_id FROM crm_tags_customerpurchasedays WHERE last_at > %(as_of)s
    UNION SELECT customer_id FROM dirty
), """
_KEPT = """
    UNION ALL
    SELECT customer_id, days, first_day, last_day, orders, spent, first_day_spent
    FROM crm_tags_customerpurchasedays p
    WHERE NOT EXISTS (SELECT 1 FROM late WHERE late.customer_id = p.customer_id)"""


def summary_sql(*, from_purchase_days: bool) -> str:
    """The summary query: mixed (purchase days and the events of the customers they do not answer for),
    or from every order event (the purchase days not built for this order type and time zone)."""
    if from_purchase_days:
        return _SUMMARY_SQL.format(
            late=_LATE, only_late=" AND customer_id IN (SELECT customer_id FROM late)", kept=_KEPT
        )
    return _SUMMARY_SQL.format(late="", only_late="", kept="")


def _upkeep(cursor: object) -> tuple[str, str, int]:
    cursor.execute(_ENSURE_UPKEEP)  # type: ignore[attr-defined]
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT event_type, time_zone, watermark FROM crm_tags_purchasedaysupkeep WHERE id = 1 FOR UPDATE"
    )
    kind, zone, mark = cursor.fetchone()  # type: ignore[attr-defined]
    return kind, zone, mark


def purchase_days_catch_up(*, order_type: str, time_zone: str) -> str:
    """Bring the purchase days up to every committed order event: recompute the customers of the events
    newer than the watermark (or rebuild all when they are many, or the order type or time zone
    changed) and move the watermark to the newest event. Writers of events wait meanwhile (the events'
    SHARE lock). Returns what it did: "current", "caught up" or "rebuilt"."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE crm_tags_event IN SHARE MODE")
        kind, zone, mark = _upkeep(cursor)
        cursor.execute("SELECT COALESCE(max(id), 0) FROM crm_tags_event")
        top = cursor.fetchone()[0]
        same = kind == order_type and zone == time_zone
        if same and top == mark:
            return "current"
        if (
            not same
            or mark == 0
            or top - mark > max(REBUILD_SHARE * estimate(cursor, "crm_tags_event")[1], REBUILD_MIN_EVENTS)
        ):
            cursor.execute(
                "UPDATE crm_tags_purchasedaysupkeep SET event_type = %s, time_zone = %s WHERE id = 1",
                [order_type, time_zone],
            )
            _rebuild(cursor, order_type, time_zone)
            done = "rebuilt"
        else:
            cursor.execute(
                "SELECT crm_tags_refresh_purchase_days(array_agg(DISTINCT customer_id)) FROM crm_tags_event "
                "WHERE id > %s AND event_type = %s",
                [mark, order_type],
            )
            done = "caught up"
        cursor.execute(
            "UPDATE crm_tags_purchasedaysupkeep SET watermark = %s, rebuilt_at = CASE WHEN %s THEN %s "
            "ELSE rebuilt_at END WHERE id = 1",
            [top, done == "rebuilt", timezone.now()],
        )
    log.info("purchase days %s to event %s", done, top)
    return done


def _rebuild(cursor: object, order_type: str, time_zone: str) -> None:
    from crm_tags.rules import tune_session_for_rules

    tune_session_for_rules(cursor)
    cursor.execute("DROP TABLE IF EXISTS pg_temp.crm_purchase_days_rebuilt")  # type: ignore[attr-defined]
    cursor.execute(_REBUILD_SQL, {"tz": time_zone, "type": order_type})  # type: ignore[attr-defined]
    cursor.execute("DELETE FROM crm_tags_customerpurchasedays")  # type: ignore[attr-defined]
    cursor.execute(  # type: ignore[attr-defined]
        "INSERT INTO crm_tags_customerpurchasedays (customer_id, first_day, last_day, days, orders, spent,"
        " first_day_spent, last_at) SELECT customer_id, first_day, last_day, days, orders, spent,"
        " first_day_spent, last_at FROM crm_purchase_days_rebuilt"
    )
    cursor.execute("DROP TABLE crm_purchase_days_rebuilt")  # type: ignore[attr-defined]


def purchase_summary_arrays(
    cursor: object, *, as_of: datetime.date, moment: datetime.datetime, order_type: str, time_zone: str
) -> dict[str, np.ndarray]:
    """Every buyer's summary up to `moment` (the end of the local day `as_of`), as numpy columns (the
    SUMMARY_COLUMNS, ordered by customer id): frequency, recency and age in days, monetary (the mean
    of the repeat purchase days' spend), days since the last order, orders and their total. Reads the
    purchase days when they count this order type in this time zone (else every order)."""
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT event_type, time_zone, watermark FROM crm_tags_purchasedaysupkeep WHERE id = 1"
    )
    upkeep = cursor.fetchone()  # type: ignore[attr-defined]
    built = upkeep is not None and upkeep[:2] == (order_type, time_zone)
    params = {
        "mark": upkeep[2] if built else 0,
        "type": order_type,
        "as_of": moment,
        "tz": time_zone,
        "day": as_of,
    }
    cursor.execute(summary_sql(from_purchase_days=built), params)  # type: ignore[attr-defined]
    rows = cursor.fetchall()  # type: ignore[attr-defined]
    table = np.array(rows, dtype=float).reshape(-1, len(SUMMARY_COLUMNS))
    table = table[np.argsort(table[:, 0], kind="stable")]
    arrays = {name: table[:, i] for i, name in enumerate(SUMMARY_COLUMNS)}
    arrays["customer_id"] = arrays["customer_id"].astype(np.int64)
    return arrays
