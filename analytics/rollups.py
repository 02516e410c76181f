"""Rollups behind the dashboards: small summary tables kept exact by Postgres triggers, rebuilt set-based.

- Tickets per created day and per resolved day (in `ROLLUP_TZ`), per team, urgency, type, channel and
  campaign: opened, first-response / resolution met and missed (decided by timestamps), closed,
  resolved in time. Kept by statement-level triggers on `tickets_ticket` (transition tables), in the
  same transaction as the write, whatever writes it (services, bulk updates, admin, raw SQL).
- Campaign metrics per (date, channel) and per (month, campaign, channel): triggers on
  `campaigns_dailymetric` (the import deletes and re-inserts the days it replaces: both are seen).
- Tag membership changes per (day, tag): entered and exited, by triggers on the tag history.
- Customers with an order per month (`ROLLUP_TZ` months): refreshed incrementally from the events
  table keyed on an id watermark, rebuilt in full every hour, so the customer-events importer
  (crm_tags) carries no trigger; and cohort cells (signup day, source channel, order month →
  customers) recounted from them whenever a fingerprint of customers and events changed (checked
  at request time and every 5 minutes by beat). The cohorts chart says when they were counted.

Trigger rows are deltas (+1 / -1, appended without touching existing rows, so concurrent writers
never wait on each other or deadlock); readers sum them; `compact()` (beat) folds them per key.
The day boundaries are those of `settings.TIME_ZONE` when the functions were installed: a viewer in
another time zone gets the same figures from the raw tables. After changing `TIME_ZONE`, run
`manage.py analytics_rollups --rebuild`.
"""

# SQL is assembled from table names, column lists and a validated time-zone name; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

ROLLUP_TZ = settings.TIME_ZONE

TICKETS = "tickets_ticket"
METRICS = "campaigns_dailymetric"
EVENTS = "crm_tags_event"
CREATED = "analytics_ticketcreatedday"
RESOLVED = "analytics_ticketresolvedday"
CHANNEL_DAY = "analytics_metricchannelday"
CAMPAIGN_MONTH = "analytics_metriccampaignmonth"
ORDER_MONTH = "analytics_customerordermonth"
STATE = "analytics_rollupstate"
COHORT_CELL = "analytics_cohortcell"
CUSTOMERS = "crm_tags_customer"
HISTORY = "crm_tags_tagmembershipchange"
TAG_DAY = "analytics_tagday"

KEY = "team_id, urgency, type, channel, campaign_id"
SUMS = ("spend", "revenue", "impressions", "clicks", "leads", "conversions")
# Tables whose delta rows compact() folds, with their key columns and their counters.
DELTA_TABLES = {
    CREATED: (f"day, {KEY}", ("opened", "responded", "fr_met", "fr_missed", "res_met", "res_missed")),
    RESOLVED: (f"day, {KEY}", ("closed", "in_time")),
    CHANNEL_DAY: ("date, channel", (*SUMS, "n")),
    CAMPAIGN_MONTH: ("month, campaign_id, channel", (*SUMS, "n")),
    TAG_DAY: ("day, tag_id", ("entered", "exited")),
}


def _tz_literal(tz: str) -> str:
    zoneinfo.ZoneInfo(tz)  # raises for anything that is not a zone name
    if "'" in tz:
        raise ValueError(tz)
    return f"'{tz}'"


def _ticket_deltas(source: str, tz: str) -> str:
    """Two statements adding the signed contributions of `source` (rows with a sign `s`)."""
    z = _tz_literal(tz)
    created = f"""
        INSERT INTO {CREATED} (day, {KEY}, opened, responded, fr_met, fr_missed, res_met, res_missed)
        SELECT (created_at AT TIME ZONE {z})::date, {KEY}, sum(s),
               sum(CASE WHEN first_response_at IS NOT NULL THEN s ELSE 0 END),
               sum(CASE WHEN first_response_at <= first_response_due THEN s ELSE 0 END),
               sum(CASE WHEN first_response_at > first_response_due THEN s ELSE 0 END),
               sum(CASE WHEN resolved_at <= resolution_due THEN s ELSE 0 END),
               sum(CASE WHEN resolved_at > resolution_due THEN s ELSE 0 END)
        FROM ({source}) c
        GROUP BY 1, {KEY}
        HAVING sum(s) <> 0
            OR sum(CASE WHEN first_response_at IS NOT NULL THEN s ELSE 0 END) <> 0
            OR sum(CASE WHEN first_response_at <= first_response_due THEN s ELSE 0 END) <> 0
            OR sum(CASE WHEN first_response_at > first_response_due THEN s ELSE 0 END) <> 0
            OR sum(CASE WHEN resolved_at <= resolution_due THEN s ELSE 0 END) <> 0
            OR sum(CASE WHEN resolved_at > resolution_due THEN s ELSE 0 END) <> 0"""
    resolved = f"""
        INSERT INTO {RESOLVED} (day, {KEY}, closed, in_time)
        SELECT (resolved_at AT TIME ZONE {z})::date, {KEY}, sum(s),
               sum(CASE WHEN resolved_at <= resolution_due THEN s ELSE 0 END)
        FROM ({source}) c
        WHERE resolved_at IS NOT NULL
        GROUP BY 1, {KEY}
        HAVING sum(s) <> 0 OR sum(CASE WHEN resolved_at <= resolution_due THEN s ELSE 0 END) <> 0"""
    return f"{created};\n{resolved};"


def _metric_deltas(source: str) -> str:
    sums = ", ".join(f"sum({c} * s)" for c in SUMS) + ", sum(s)"
    nonzero = " OR ".join(f"sum({c} * s) <> 0" for c in SUMS) + " OR sum(s) <> 0"
    cols = ", ".join(SUMS) + ", n"
    return f"""
        INSERT INTO {CHANNEL_DAY} (date, channel, {cols})
        SELECT date, channel, {sums} FROM ({source}) m GROUP BY date, channel HAVING {nonzero};
        INSERT INTO {CAMPAIGN_MONTH} (month, campaign_id, channel, {cols})
        SELECT date_trunc('month', date)::date, campaign_id, channel, {sums}
        FROM ({source}) m GROUP BY 1, 2, 3 HAVING {nonzero};"""


def _tag_deltas(source: str, tz: str) -> str:
    z = _tz_literal(tz)
    entered = "sum(CASE WHEN change = 'entered' THEN s ELSE 0 END)"
    exited = "sum(CASE WHEN change = 'exited' THEN s ELSE 0 END)"
    return f"""
        INSERT INTO {TAG_DAY} (day, tag_id, entered, exited)
        SELECT (created_at AT TIME ZONE {z})::date, tag_id, {entered}, {exited}
        FROM ({source}) h GROUP BY 1, 2 HAVING {entered} <> 0 OR {exited} <> 0;"""


_SOURCES = {
    "insert": "SELECT *, 1 AS s FROM new_rows",
    "delete": "SELECT *, -1 AS s FROM old_rows",
    "update": "SELECT *, 1 AS s FROM new_rows UNION ALL SELECT *, -1 AS s FROM old_rows",
}
_REFERENCING = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def _TRIGGERED(tz: str) -> tuple:  # noqa: N802 - a table of what is triggered
    return (
        (TICKETS, "ticket", lambda src: _ticket_deltas(src, tz)),
        (METRICS, "metric", _metric_deltas),
        (HISTORY, "tag", lambda src: _tag_deltas(src, tz)),
    )


def install_triggers_sql(tz: str = ROLLUP_TZ) -> str:
    """(Re)create the trigger functions and triggers (idempotent)."""
    parts = []
    for table, short, body in _TRIGGERED(tz):
        for op, source in _SOURCES.items():
            name = f"analytics_{short}_rollup_{op}"
            parts.append(
                f"""
                CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
                BEGIN
                {body(source)}
                RETURN NULL;
                END $fn$;
                DROP TRIGGER IF EXISTS {name} ON {table};
                CREATE TRIGGER {name} AFTER {op.upper()} ON {table} {_REFERENCING[op]}
                  FOR EACH STATEMENT EXECUTE FUNCTION {name}();"""
            )
    return "\n".join(parts)


def drop_triggers_sql() -> str:
    parts = []
    for table, short, _body in _TRIGGERED(ROLLUP_TZ):
        for op in _SOURCES:
            name = f"analytics_{short}_rollup_{op}"
            parts.append(f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {name}();")
    return "\n".join(parts)


def _state_set(cursor, key: str, value: str) -> None:
    cursor.execute(
        f"""INSERT INTO {STATE} (key, value, updated_at) VALUES (%s, %s, now())
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at""",
        [key, value],
    )


def rebuild(tz: str = ROLLUP_TZ) -> None:
    """Reinstall the triggers and recompute every rollup from the raw tables (backfill; one transaction).

    Takes share locks on tickets and metrics so that no write slips between the recount and the
    triggers taking over.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TICKETS}, {METRICS}, {HISTORY} IN SHARE MODE")
        cursor.execute(install_triggers_sql(tz))
        cursor.execute(f"TRUNCATE {CREATED}, {RESOLVED}, {CHANNEL_DAY}, {CAMPAIGN_MONTH}, {TAG_DAY}")
        cursor.execute(_ticket_deltas(f"SELECT *, 1 AS s FROM {TICKETS}", tz))
        cursor.execute(_metric_deltas(f"SELECT *, 1 AS s FROM {METRICS}"))
        cursor.execute(_tag_deltas(f"SELECT *, 1 AS s FROM {HISTORY}", tz))
        _state_set(cursor, "tz", tz)
    refresh_cohorts(full=True, tz=tz)


def compact() -> int:
    """Fold the delta rows of each key into one row (dropping all-zero keys). Returns rows removed.

    Rows appended by writers after this statement's snapshot are neither deleted nor counted here.
    """
    removed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [COMPACT_LOCK])
        if not cursor.fetchone()[0]:
            return 0
        for table, (key, counters) in DELTA_TABLES.items():
            sums = ", ".join(f"sum({c})" for c in counters)
            nonzero = " OR ".join(f"sum({c}) <> 0" for c in counters)
            cursor.execute(
                f"""
                WITH folded AS (DELETE FROM {table} RETURNING *),
                kept AS (
                  INSERT INTO {table} ({key}, {", ".join(counters)})
                  SELECT {key}, {sums} FROM folded GROUP BY {key} HAVING {nonzero}
                  RETURNING 1)
                SELECT (SELECT count(*) FROM folded) - (SELECT count(*) FROM kept)
                """
            )
            removed += cursor.fetchone()[0]
    return removed


COMPACT_LOCK = 7_402_118


# Customers with an order per month ---------------------------------------------------------------

ORDER_MONTHS_LOCK = 7_402_117  # pg advisory lock key: one refresher at a time


def _order_months_insert(tz: str, where: str) -> str:
    z = _tz_literal(tz)
    return f"""
        INSERT INTO {ORDER_MONTH} (customer_id, month)
        SELECT DISTINCT customer_id, date_trunc('month', occurred_at AT TIME ZONE {z})::date
        FROM {EVENTS} WHERE event_type = 'order' AND {where}
        ON CONFLICT DO NOTHING"""


def refresh_order_months(*, full: bool = False, tz: str = ROLLUP_TZ) -> dt.datetime | None:
    """Bring the order-months table up to the newest event (incremental past the id watermark).

    `full` recomputes it (hourly beat, and after a rebuild), which also drops months whose events
    were deleted and picks up any event committed out of id order. Returns the time the table is
    complete to (when the last refresh started), or None when another refresher holds the lock.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ORDER_MONTHS_LOCK])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(f"SELECT key, value FROM {STATE} WHERE key IN ('events_id', 'events_tz')")
        state = dict(cursor.fetchall())
        if state.get("events_tz") != tz:
            full = True
        cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {EVENTS}")
        newest = cursor.fetchone()[0]
        started = timezone.now()
        if full:
            cursor.execute(f"TRUNCATE {ORDER_MONTH}")
            cursor.execute(_order_months_insert(tz, "id <= %(newest)s"), {"newest": newest})
            _state_set(cursor, "events_tz", tz)
            _state_set(cursor, "events_full_at", started.isoformat())
        else:
            watermark = int(state.get("events_id") or 0)
            if newest > watermark:
                cursor.execute(
                    _order_months_insert(tz, "id > %(low)s AND id <= %(newest)s"),
                    {"low": watermark, "newest": newest},
                )
        _state_set(cursor, "events_id", str(newest))
        _state_set(cursor, "events_at", started.isoformat())
    return started


def _cohort_fingerprint(cursor) -> str:
    """Changes whenever customers or order events change (ids, updated times, counts)."""
    cursor.execute(
        f"""SELECT (SELECT COALESCE(max(id), 0) FROM {EVENTS}),
                   (SELECT concat_ws('/', max(updated_at), count(*), max(id)) FROM {CUSTOMERS})"""
    )
    return "/".join(str(v) for v in cursor.fetchone())


def refresh_cohorts(*, full: bool = False, tz: str = ROLLUP_TZ) -> dt.datetime | None:
    """Bring the cohort cells up to date when customers or events changed since the last refresh.

    The cells (signup day, source channel, order month → customers; month NULL: cohort size) are
    recounted set-based from the customers and the order months (a few thousand rows out). Returns
    when the cells were last recounted.
    """
    from django.utils.dateparse import parse_datetime

    with connection.cursor() as cursor:
        fingerprint = _cohort_fingerprint(cursor)
        cursor.execute(f"SELECT key, value FROM {STATE} WHERE key IN ('cohorts_key', 'cohorts_at')")
        state = dict(cursor.fetchall())
    wanted = f"{tz}|{fingerprint}"
    if not full and state.get("cohorts_key") == wanted:
        return parse_datetime(state["cohorts_at"]) if state.get("cohorts_at") else None
    if refresh_order_months(full=full, tz=tz) is None:
        # Another request is bringing the order months up to date: keep the cells it will recount.
        return parse_datetime(state["cohorts_at"]) if state.get("cohorts_at") else None
    z = _tz_literal(tz)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ORDER_MONTHS_LOCK + 2])
        started = timezone.now()
        cursor.execute(f"TRUNCATE {COHORT_CELL}")
        cursor.execute(
            f"""
            INSERT INTO {COHORT_CELL} (signup_day, channel, month, customers)
            SELECT (c.signup_at AT TIME ZONE {z})::date, c.source_channel, NULL::date, count(*)
            FROM {CUSTOMERS} c WHERE c.signup_at IS NOT NULL GROUP BY 1, 2
            UNION ALL
            SELECT (c.signup_at AT TIME ZONE {z})::date, c.source_channel, om.month, count(*)
            FROM {CUSTOMERS} c JOIN {ORDER_MONTH} om ON om.customer_id = c.id
            WHERE c.signup_at IS NOT NULL GROUP BY 1, 2, 3
            """
        )
        _state_set(cursor, "cohorts_key", wanted)
        _state_set(cursor, "cohorts_at", started.isoformat())
    return started


def order_months_as_of() -> dt.datetime | None:
    """When the order-months table was last brought up to date."""
    from django.utils.dateparse import parse_datetime

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {STATE} WHERE key = 'events_at'")
        row = cursor.fetchone()
    return parse_datetime(row[0]) if row else None


def order_months_fresh(tz: str = ROLLUP_TZ) -> dt.datetime | None:
    """Refresh incrementally if events arrived since the watermark (a cheap max(id) look-up otherwise)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT (SELECT COALESCE(max(id), 0) FROM {EVENTS}),
                       (SELECT value FROM {STATE} WHERE key = 'events_id'),
                       (SELECT value FROM {STATE} WHERE key = 'events_tz'),
                       (SELECT value FROM {STATE} WHERE key = 'events_at')"""
        )
        newest, watermark, state_tz, at = cursor.fetchone()
    if watermark is not None and int(watermark) >= newest and state_tz == tz:
        from django.utils.dateparse import parse_datetime

        return parse_datetime(at) if at else None
    started = refresh_order_months(tz=tz)
    return started or order_months_as_of()


def usable(tz: str) -> bool:
    """Whether day rollups answer for a viewer in `tz` (the same zone as the rollups' days)."""
    return tz == ROLLUP_TZ
