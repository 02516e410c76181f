"""Customer figures: tag sizes over time, entered/exited per bucket, retention cohorts by signup month."""

# SQL is assembled from model table names and fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from analytics import links, rollups
from analytics.filters import DashboardFilters
from analytics.sql import Where, bucket_series_sql, fetch_all
from crm_tags.models import Customer, Event, Tag, TagMembershipChange

HISTORY = TagMembershipChange._meta.db_table
TOP_TAGS = 10
MAX_COHORT_MONTHS = 24


def _params(filters: DashboardFilters) -> dict[str, Any]:
    return {
        "start": filters.start,
        "end": filters.end,
        "tz": filters.tz,
        "grain": filters.grain,
        "date_from": filters.date_from,
        "date_to": filters.date_to,
    }


def kpis(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Customers, signups in the range, tags and memberships (one statement of scalar subqueries)."""
    where = Where()
    if filters.channel:
        where.add("c.source_channel = {}", filters.channel)
    sql = f"""
        SELECT count(*), count(*) FILTER (WHERE c.signup_at >= %(start)s AND c.signup_at < %(end)s),
               (SELECT count(*) FROM {Tag._meta.db_table}),
               (SELECT COALESCE(sum(members_count), 0) FROM {Tag._meta.db_table})
        FROM {Customer._meta.db_table} c WHERE {where.sql()}
    """
    customers, signups, tags, members = fetch_all(sql, {**where.params, **_params(filters)})[0]
    return {
        "tiles": [
            {
                "key": "customers",
                "label": _("Customers"),
                "value": customers,
                "link": links.customer_list_url(),
            },
            {"key": "signups", "label": _("Signed up in range"), "value": signups},
            {"key": "tags", "label": _("Tags"), "value": tags},
            {"key": "memberships", "label": _("Tag memberships"), "value": int(members)},
        ]
    }


def tag_sizes(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Members of the largest tags at the end of each bucket, from the entered/exited history."""
    if rollups.usable(filters.tz):
        # From the (day, tag) rollup of the history: a few rows per tag and day.
        history = f"""
          SELECT h.tag_id, h.day AS at, h.entered - h.exited AS n
          FROM {rollups.TAG_DAY} h WHERE h.tag_id IN (SELECT id FROM top)"""
        before_cond = "h.at < %(date_from)s"
        in_range = "h.at >= %(date_from)s AND h.at <= %(date_to)s"
        bucket = "date_trunc(%(grain)s, h.at::timestamp)::date"
    else:
        history = f"""
          SELECT h.tag_id, h.created_at AS at, CASE WHEN h.change = 'entered' THEN 1 ELSE -1 END AS n
          FROM {HISTORY} h WHERE h.tag_id IN (SELECT id FROM top)"""
        before_cond = "h.at < %(start)s"
        in_range = "h.at >= %(start)s AND h.at < %(end)s"
        bucket = "date_trunc(%(grain)s, h.at AT TIME ZONE %(tz)s)::date"
    sql = f"""
        WITH top AS (
          SELECT id, slug, name FROM {Tag._meta.db_table} ORDER BY members_count DESC, id LIMIT {TOP_TAGS}),
        before AS (
          SELECT h.tag_id, sum(h.n) AS n FROM ({history}) h WHERE {before_cond} GROUP BY 1),
        daily AS (
          SELECT h.tag_id, {bucket} AS bucket, sum(h.n) AS n
          FROM ({history}) h WHERE {in_range}
          GROUP BY 1, 2)
        SELECT top.slug, top.name, b.bucket,
               COALESCE(max(before.n) OVER (PARTITION BY top.id), 0)
                 + sum(COALESCE(daily.n, 0)) OVER (PARTITION BY top.id ORDER BY b.bucket) AS size
        FROM top CROSS JOIN ({bucket_series_sql()}) b
        LEFT JOIN daily ON daily.tag_id = top.id AND daily.bucket = b.bucket
        LEFT JOIN before ON before.tag_id = top.id
        ORDER BY top.slug, b.bucket
    """
    rows = fetch_all(sql, _params(filters))
    x: list[str] = []
    series: dict[str, dict[str, Any]] = {}
    for slug, name, bucket, size in rows:
        entry = series.setdefault(
            slug, {"key": slug, "name": name, "values": [], "link": links.tag_url(slug)}
        )
        entry["values"].append(int(size))
        if len(series) == 1:
            x.append(bucket.isoformat())
    return {"x": x, "series": list(series.values()), "grain": filters.grain}


def entered_exited(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """How many customers entered and exited any tag per bucket."""
    if rollups.usable(filters.tz):
        counted = f"""
          SELECT date_trunc(%(grain)s, h.day::timestamp)::date AS bucket,
                 sum(h.entered) AS entered, sum(h.exited) AS exited
          FROM {rollups.TAG_DAY} h WHERE h.day >= %(date_from)s AND h.day <= %(date_to)s
          GROUP BY 1"""
    else:
        counted = f"""
          SELECT date_trunc(%(grain)s, h.created_at AT TIME ZONE %(tz)s)::date AS bucket,
                 count(*) FILTER (WHERE h.change = 'entered') AS entered,
                 count(*) FILTER (WHERE h.change = 'exited') AS exited
          FROM {HISTORY} h WHERE h.created_at >= %(start)s AND h.created_at < %(end)s
          GROUP BY 1"""
    sql = f"""
        WITH buckets AS ({bucket_series_sql()}),
        counted AS ({counted})
        SELECT b.bucket, COALESCE(c.entered, 0)::bigint, COALESCE(c.exited, 0)::bigint
        FROM buckets b LEFT JOIN counted c USING (bucket) ORDER BY b.bucket
    """
    rows = fetch_all(sql, _params(filters))
    return {
        "x": [row[0].isoformat() for row in rows],
        "series": [
            {"key": "entered", "name": _("Entered"), "values": [row[1] for row in rows]},
            {"key": "exited", "name": _("Exited"), "values": [-row[2] for row in rows]},
        ],
        "grain": filters.grain,
    }


def cohorts(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Retention by signup month: the share of each cohort with an order in month 0, 1, 2, ... after signup.

    Cohorts are the customers who signed up in the range (months in the viewer's time zone).
    """
    where = Where()
    if filters.channel:
        where.add("c.source_channel = {}", filters.channel)
    as_of = None
    if rollups.usable(filters.tz):
        # Cohort cells (signup day, channel, order month → customers), recounted when customers or
        # orders changed since the last recount; a few thousand rows at most.
        as_of = rollups.refresh_cohorts(tz=filters.tz)
        cells = Where()
        if filters.channel:
            cells.add("cell.channel = {}", filters.channel)
        where = cells
        sql = f"""
            WITH cells AS (
              SELECT date_trunc('month', cell.signup_day::timestamp)::date AS month, cell.month AS active,
                     sum(cell.customers)::bigint AS n
              FROM {rollups.COHORT_CELL} cell
              WHERE cell.signup_day >= %(date_from)s AND cell.signup_day <= %(date_to)s AND {cells.sql()}
              GROUP BY 1, 2),
            size AS (SELECT month, n FROM cells WHERE active IS NULL),
            active AS (
              SELECT month, (extract(year FROM active) - extract(year FROM month)) * 12
                            + extract(month FROM active) - extract(month FROM month) AS offset_month, n
              FROM cells WHERE active IS NOT NULL AND active >= month)
            SELECT s.month, s.n, a.offset_month::int, a.n
            FROM size s LEFT JOIN active a ON a.month = s.month AND a.offset_month < {MAX_COHORT_MONTHS}
            ORDER BY 1, 3
        """
    else:
        sql = f"""
            WITH cohort AS (
              SELECT c.id, date_trunc('month', c.signup_at AT TIME ZONE %(tz)s) AS month
              FROM {Customer._meta.db_table} c
              WHERE c.signup_at >= %(start)s AND c.signup_at < %(end)s AND {where.sql()}),
            size AS (SELECT month, count(*) AS n FROM cohort GROUP BY month),
            active AS (
              SELECT ch.month, o.offset_month, count(*) AS n
              FROM cohort ch
              CROSS JOIN LATERAL (
                -- per customer, through the (customer, event_type, occurred_at) index: the months with an order
                SELECT DISTINCT (extract(year FROM m.om) - extract(year FROM ch.month)) * 12
                                + extract(month FROM m.om) - extract(month FROM ch.month) AS offset_month
                FROM {Event._meta.db_table} e
                CROSS JOIN LATERAL (SELECT date_trunc('month', e.occurred_at AT TIME ZONE %(tz)s) AS om) m
                WHERE e.customer_id = ch.id AND e.event_type = 'order'
                  AND e.occurred_at >= ch.month AT TIME ZONE %(tz)s) o
              GROUP BY 1, 2)
            SELECT s.month::date, s.n, a.offset_month::int, a.n
            FROM size s LEFT JOIN active a ON a.month = s.month AND a.offset_month < {MAX_COHORT_MONTHS}
            ORDER BY 1, 3
        """
    rows = fetch_all(sql, {**where.params, **_params(filters)})
    months: dict[str, dict[str, Any]] = {}
    width = 0
    for month, size, offset, active in rows:
        entry = months.setdefault(month.isoformat()[:7], {"size": size, "active": {}})
        if offset is not None:
            entry["active"][offset] = active
            width = max(width, offset + 1)
    y = list(months)
    z = [[round(months[m]["active"].get(i, 0) / months[m]["size"], 4) for i in range(width)] for m in y]
    return {
        "x": [str(i) for i in range(width)],
        "y": y,
        "z": z,
        "sizes": [months[m]["size"] for m in y],
        "links": [links.customer_list_url(signup_month=m) for m in y],
        "unit": "share",
        # Customers and orders as counted at this time (the cohort cells' last recount); None: read live.
        "orders_as_of": as_of.isoformat() if as_of else None,
    }
