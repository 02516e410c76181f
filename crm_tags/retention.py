"""Retention of customer events: events older than the kept period are deleted in batches, each batch in
its own short transaction, with the lifetime totals of the (customer, type) pairs it touched recomputed
from the events left and their ranks refreshed by the events' delete trigger, so both stay exact."""

# SQL is assembled from fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

import logging
from datetime import datetime

from django.db import connection, transaction

from crm_tags.partitions import drop_months_before

log = logging.getLogger(__name__)

# Each event type's oldest events through the (event_type, occurred_at) index: a loose scan finds the
# types (one probe each) instead of reading every event.
EVENT_TYPES = """
    WITH RECURSIVE types AS (
      (SELECT event_type FROM crm_tags_event ORDER BY event_type LIMIT 1)
      UNION ALL
      SELECT (SELECT e.event_type FROM crm_tags_event e WHERE e.event_type > types.event_type
              ORDER BY e.event_type LIMIT 1)
      FROM types WHERE types.event_type IS NOT NULL)
    SELECT event_type FROM types WHERE event_type IS NOT NULL
"""

# The totals of one type for the given customers, from their remaining events (through the
# (customer, occurred_at) index): rewritten where events are left, deleted where none are.
RECOMPUTE = """
    WITH fresh AS (
      SELECT c.customer_id, a.*
      FROM unnest(%(customers)s::bigint[]) AS c(customer_id)
      CROSS JOIN LATERAL (
        SELECT count(*) AS n, count(e.amount) AS ac, sum(e.amount) AS s, min(e.amount) AS mn,
               max(e.amount) AS mx, min(e.occurred_at) AS first, max(e.occurred_at) AS last
        FROM crm_tags_event e WHERE e.customer_id = c.customer_id AND e.event_type = %(type)s) a),
    emptied AS (
      DELETE FROM crm_tags_customereventtotal t USING fresh
      WHERE fresh.n = 0 AND t.customer_id = fresh.customer_id AND t.event_type = %(type)s
      RETURNING 1)
    INSERT INTO crm_tags_customereventtotal
      (customer_id, event_type, events, amount_count, amount_sum, amount_min, amount_max, first_at, last_at)
    SELECT customer_id, %(type)s, n, ac, s, mn, mx, first, last FROM fresh WHERE n > 0
    ON CONFLICT (customer_id, event_type) DO UPDATE SET
      events = EXCLUDED.events, amount_count = EXCLUDED.amount_count, amount_sum = EXCLUDED.amount_sum,
      amount_min = EXCLUDED.amount_min, amount_max = EXCLUDED.amount_max,
      first_at = EXCLUDED.first_at, last_at = EXCLUDED.last_at
"""


def event_types() -> list[str]:
    """The event types present (a few dozen at most)."""
    with connection.cursor() as cursor:
        cursor.execute(EVENT_TYPES)
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic
def _delete_batch(*, event_type: str, before: datetime, batch: int) -> int:
    with connection.cursor() as cursor:
        # Imports take this lock too: no event of a touched pair is added between the delete and the
        # recount (their totals are added to the row this batch rewrites, after it commits).
        cursor.execute("LOCK TABLE crm_tags_event IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            "WITH gone AS (DELETE FROM crm_tags_event WHERE id IN ("
            "SELECT id FROM crm_tags_event WHERE event_type = %s AND occurred_at < %s "
            "ORDER BY occurred_at LIMIT %s) RETURNING customer_id) "
            "SELECT count(*), COALESCE(array_agg(DISTINCT customer_id), '{}') FROM gone",
            [event_type, before, batch],
        )
        deleted, customers = cursor.fetchone()
        if deleted:
            cursor.execute(RECOMPUTE, {"customers": customers, "type": event_type})
    return deleted


def events_delete_before(*, before: datetime, batch: int) -> dict[str, int]:
    """Delete the events that occurred before `before`: whole months first (their partitions dropped,
    crm_tags.partitions), then the rest `batch` at a time; returns the events deleted, the batches run
    and the month partitions dropped."""
    months = drop_months_before(before)
    deleted, batches = months["events"], 0
    for event_type in event_types():
        while True:
            count = _delete_batch(event_type=event_type, before=before, batch=batch)
            if count:
                deleted += count
                batches += 1
                log.info("retention: %s %s events before %s deleted", count, event_type, before)
            if count < batch:
                break
    return {"deleted": deleted, "batches": batches, "partitions_dropped": months["months"]}
