"""Support operations figures: each function is one aggregate statement over tickets (or their ratings)."""

# SQL is assembled from model table names and fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from analytics import links, rollups
from analytics.filters import DashboardFilters
from analytics.sql import Where, bucket_series_sql, fetch_all
from campaigns.models import Campaign
from knowledge_base.models import Deflection
from tickets.models import SatisfactionRating, Ticket

T = Ticket._meta.db_table
CREATED = rollups.CREATED  # tickets per created day (rollup), same filter columns as tickets
RESOLVED = rollups.RESOLVED  # tickets per resolved day (rollup)
OPEN = [str(s) for s in Ticket.OPEN_STATUSES]
WAITING = str(Ticket.Status.WAITING_ON_REQUESTER)
AGE_BUCKETS = [
    ("lt_1d", 0, 1),
    ("1_3d", 1, 3),
    ("3_7d", 3, 7),
    ("7_30d", 7, 30),
    ("gt_30d", 30, None),
]


def age_bucket_labels() -> dict[str, str]:
    return {
        "lt_1d": _("< 1 day"),
        "1_3d": _("1–3 days"),
        "3_7d": _("3–7 days"),
        "7_30d": _("7–30 days"),
        "gt_30d": _("> 30 days"),
    }


def _ticket_where(filters: DashboardFilters, alias: str = "t") -> Where:
    """Team, urgency, channel and campaign conditions on the tickets table."""
    where = Where()
    if filters.team:
        where.add(f"{alias}.team_id = {{}}", filters.team)
    if filters.urgency:
        where.add(f"{alias}.urgency = {{}}", filters.urgency)
    if filters.channel:
        where.add(f"{alias}.channel = {{}}", filters.channel)
    if filters.campaign:
        where.add(
            f"{alias}.campaign_id IN (SELECT id FROM {Campaign._meta.db_table} WHERE code = {{}})",
            filters.campaign,
        )
    return where


def _range_params(filters: DashboardFilters) -> dict[str, Any]:
    return {
        "start": filters.start,
        "end": filters.end,
        "tz": filters.tz,
        "grain": filters.grain,
        "date_from": filters.date_from,
        "date_to": filters.date_to,
    }


def _status_labels() -> dict[str, str]:
    return {str(value): str(label) for value, label in Ticket.Status.choices}


def kpis(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Opened and resolved in the range, open backlog now, resolved within SLA in the range."""
    tl = links.TicketLinks(filters, staff)
    where = _ticket_where(filters)
    cond = where.sql()
    if rollups.usable(filters.tz):
        # Opened, closed and resolved in time from the day rollups; the open backlog from the open tickets.
        days = "t.day >= %(date_from)s AND t.day <= %(date_to)s"
        opened = f"SELECT COALESCE(sum(t.opened), 0)::bigint FROM {CREATED} t WHERE {days} AND {cond}"
        closed = f"SELECT COALESCE(sum(t.closed), 0)::bigint FROM {RESOLVED} t WHERE {days} AND {cond}"
        resolved_in_time = (
            f"SELECT COALESCE(sum(t.in_time), 0)::bigint FROM {RESOLVED} t WHERE {days} AND {cond}"
        )
    else:
        # Scalar subqueries, so each count walks its own index (created, resolved).
        opened = f"SELECT count(*) FROM {T} t WHERE t.created_at >= %(start)s AND t.created_at < %(end)s AND {cond}"
        closed = f"SELECT count(*) FROM {T} t WHERE t.resolved_at >= %(start)s AND t.resolved_at < %(end)s AND {cond}"
        resolved_in_time = (
            f"SELECT count(*) FROM {T} t WHERE t.resolved_at >= %(start)s AND t.resolved_at < %(end)s"
            f" AND t.resolved_at <= t.resolution_due AND {cond}"
        )
    sql = f"""
        SELECT ({opened}), ({closed}),
          (SELECT count(*) FROM {T} t WHERE t.status = ANY(%(open)s) AND {cond}),
          (SELECT count(*) FROM {T} t WHERE t.status = ANY(%(open)s) AND t.sla_state = 'breached' AND {cond}),
          ({resolved_in_time})
    """
    opened, closed, backlog, breached, resolved_met = fetch_all(
        sql, {**where.params, **_range_params(filters), "open": OPEN}
    )[0]
    return {
        "tiles": [
            {"key": "opened", "label": _("Opened"), "value": opened},
            {"key": "closed", "label": _("Closed"), "value": closed},
            {
                "key": "backlog",
                "label": _("Open now"),
                "value": backlog,
                "link": tl.url(status="open"),
            },
            {
                "key": "breached",
                "label": _("Breached, open"),
                "value": breached,
                "link": tl.url(sla_state="breached"),
            },
            {"key": "resolved_in_time", "label": _("Resolved within SLA"), "value": resolved_met},
        ]
    }


def inflow_outflow(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Tickets opened and closed (resolved) per day/week/month."""
    tl = links.TicketLinks(filters, staff)
    where = _ticket_where(filters)
    closed_at = "t.resolved_at"
    if rollups.usable(filters.tz):
        day_bucket = "date_trunc(%(grain)s, t.day::timestamp)::date"
        days = "t.day >= %(date_from)s AND t.day <= %(date_to)s"
        opened = (
            f"SELECT {day_bucket} AS bucket, sum(t.opened)::bigint AS n FROM {CREATED} t"
            f" WHERE {days} AND {where.sql()} GROUP BY 1"
        )
        closed = (
            f"SELECT {day_bucket} AS bucket, sum(t.closed)::bigint AS n FROM {RESOLVED} t"
            f" WHERE {days} AND {where.sql()} GROUP BY 1"
        )
    else:
        opened = f"""
          SELECT date_trunc(%(grain)s, t.created_at AT TIME ZONE %(tz)s)::date AS bucket, count(*) AS n
          FROM {T} t WHERE t.created_at >= %(start)s AND t.created_at < %(end)s AND {where.sql()}
          GROUP BY 1"""
        closed = f"""
          SELECT date_trunc(%(grain)s, {closed_at} AT TIME ZONE %(tz)s)::date AS bucket, count(*) AS n
          FROM {T} t WHERE {closed_at} >= %(start)s AND {closed_at} < %(end)s AND {where.sql()}
          GROUP BY 1"""
    sql = f"""
        WITH buckets AS ({bucket_series_sql()}),
        opened AS ({opened}),
        closed AS ({closed})
        SELECT b.bucket, COALESCE(o.n, 0), COALESCE(c.n, 0)
        FROM buckets b LEFT JOIN opened o USING (bucket) LEFT JOIN closed c USING (bucket)
        ORDER BY b.bucket
    """
    rows = fetch_all(sql, {**where.params, **_range_params(filters)})
    tl = links.TicketLinks(filters, staff)
    step = {"day": 0, "week": 6, "month": None}[filters.grain]

    def last_day(day: dt.date) -> dt.date:
        if step is None:
            return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        return day + dt.timedelta(days=step)

    x = [row[0].isoformat() for row in rows]
    return {
        "x": x,
        "series": [
            {
                "key": "opened",
                "name": _("Opened"),
                "values": [row[1] for row in rows],
                "links": [tl.url(**links.created_on(row[0], last_day(row[0]))) for row in rows],
            },
            {
                "key": "closed",
                "name": _("Closed"),
                "values": [row[2] for row in rows],
                "links": [
                    tl.url(status="done", **links.resolved_on(row[0], last_day(row[0]))) for row in rows
                ],
            },
        ],
        "grain": filters.grain,
    }


def backlog(filters: DashboardFilters, *, staff: bool, now: dt.datetime | None = None) -> dict[str, Any]:
    """Open tickets now, by status (x) and age bucket (stacked)."""
    tl = links.TicketLinks(filters, staff)
    where = _ticket_where(filters)
    cases = " ".join(
        f"WHEN t.created_at > %(now)s - interval '{low if high is None else high} days' THEN '{key}'"
        for key, low, high in AGE_BUCKETS
        if high is not None
    )
    sql = f"""
        SELECT t.status, CASE {cases} ELSE 'gt_30d' END AS age, count(*)
        FROM {T} t
        WHERE t.status = ANY(%(open)s) AND {where.sql()}
        GROUP BY 1, 2
    """
    rows = fetch_all(sql, {**where.params, "open": OPEN, "now": now or timezone.now()})
    counts = {(status, age): n for status, age, n in rows}
    labels = _status_labels()
    statuses = OPEN
    return {
        "x": [labels[s] for s in statuses],
        "x_keys": statuses,
        "series": [
            {
                "key": key,
                "name": name,
                "values": [counts.get((s, key), 0) for s in statuses],
                "links": [tl.url(status=s) for s in statuses],
            }
            for key, name in age_bucket_labels().items()
        ],
        "totals_by_age": {
            key: sum(n for (_s, age), n in counts.items() if age == key) for key, *_r in AGE_BUCKETS
        },
    }


def sla_attainment(
    filters: DashboardFilters, *, staff: bool, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Share of decided tickets (created in the range) that met first-response and resolution targets.

    A target is decided once it is met, missed, or its due time has passed on a running clock.
    Due times already include paused time (tickets.sla); a ticket waiting on the requester is
    judged at the moment its clock stopped, so a pause never counts as a breach.
    """
    tl = links.TicketLinks(filters, staff)
    where = _ticket_where(filters)
    clock = "COALESCE(t.sla_paused_at, %(now)s)"
    if rollups.usable(filters.tz):
        # Targets decided by their timestamps from the created-day rollup; running clocks past their
        # due time from the open tickets (status, created_at index). The two kinds of miss are disjoint.
        sql = f"""
            SELECT urgency, sum(a)::bigint, sum(b)::bigint, sum(c)::bigint, sum(d)::bigint FROM (
              SELECT t.urgency, t.fr_met AS a, t.fr_missed AS b, t.res_met AS c, t.res_missed AS d
              FROM {CREATED} t WHERE t.day >= %(date_from)s AND t.day <= %(date_to)s AND {where.sql()}
              UNION ALL
              SELECT t.urgency, 0, (t.first_response_at IS NULL AND {clock} > t.first_response_due)::int, 0,
                     (t.resolved_at IS NULL AND {clock} > t.resolution_due)::int
              FROM {T} t
              WHERE t.status = ANY(%(open)s) AND t.created_at >= %(start)s AND t.created_at < %(end)s
                AND {where.sql()}) x
            GROUP BY urgency
        """
    else:
        sql = f"""
            SELECT t.urgency,
              count(*) FILTER (WHERE t.first_response_at <= t.first_response_due),
              count(*) FILTER (WHERE t.first_response_at > t.first_response_due
                                 OR (t.first_response_at IS NULL AND t.status = ANY(%(open)s)
                                     AND {clock} > t.first_response_due)),
              count(*) FILTER (WHERE t.resolved_at <= t.resolution_due),
              count(*) FILTER (WHERE t.resolved_at > t.resolution_due
                                 OR (t.resolved_at IS NULL AND t.status = ANY(%(open)s)
                                     AND {clock} > t.resolution_due))
            FROM {T} t
            WHERE t.created_at >= %(start)s AND t.created_at < %(end)s AND {where.sql()}
            GROUP BY t.urgency
        """
    rows = fetch_all(
        sql, {**where.params, **_range_params(filters), "open": OPEN, "now": now or timezone.now()}
    )
    by_urgency = {row[0]: row[1:] for row in rows}
    urgencies = [str(u) for u in Ticket.Urgency.values]
    labels = {str(v): str(label) for v, label in Ticket.Urgency.choices}

    def share(met: int, missed: int) -> float | None:
        return round(met / (met + missed), 4) if met + missed else None

    first = [share(*by_urgency.get(u, (0, 0, 0, 0))[0:2]) for u in urgencies]
    resolution = [share(*by_urgency.get(u, (0, 0, 0, 0))[2:4]) for u in urgencies]
    breach_links = [tl.url(urgency=u, sla_state="breached") for u in urgencies]
    return {
        "x": [labels[u] for u in urgencies],
        "x_keys": urgencies,
        "series": [
            {"key": "first_response", "name": _("First response"), "values": first, "links": breach_links},
            {"key": "resolution", "name": _("Resolution"), "values": resolution, "links": breach_links},
        ],
        "counts": {
            u: dict(
                zip(
                    ["fr_met", "fr_missed", "res_met", "res_missed"],
                    by_urgency.get(u, (0, 0, 0, 0)),
                    strict=True,
                )
            )
            for u in urgencies
        },
        "unit": "share",
    }


PERCENTILES = (0.5, 0.9)


def _percentiles_by_ordered_scans(
    filters: DashboardFilters, where: Where, first: str, resolve: str, in_first: str, in_resolve: str
) -> dict[str, tuple[float | None, ...]]:
    """percentile_cont(0.5 / 0.9) per type, for long ranges, without sorting every duration.

    How many durations each (type, half) has in the range comes from the day rollups; the two
    values around each percentile's position are then read by an ordered scan of the per-type
    duration index (ascending for the median, descending for p90, so it stops after at most
    half / a tenth of the rows), and interpolated exactly as Postgres' percentile_cont does.
    """
    counts = fetch_all(
        f"""
        SELECT 1, t.type, sum(t.responded)::bigint FROM {CREATED} t
        WHERE t.day >= %(date_from)s AND t.day <= %(date_to)s AND {where.sql()} GROUP BY t.type
        UNION ALL
        SELECT 2, t.type, sum(t.closed)::bigint FROM {RESOLVED} t
        WHERE t.day >= %(date_from)s AND t.day <= %(date_to)s AND {where.sql()} GROUP BY t.type
        """,
        {**where.params, **_range_params(filters)},
    )
    halves = {1: (first, in_first), 2: (resolve, in_resolve)}
    parts, params, plan = [], {**where.params, **_range_params(filters)}, []
    for half, kind, n in counts:
        if not n:
            continue
        expr, cond = halves[half]
        for p in PERCENTILES:
            position = p * (n - 1)
            low = math.floor(position)
            ascending = p <= 0.5
            offset = low if ascending else n - 1 - math.ceil(position)
            name = f"k{len(plan)}"
            params[f"{name}_type"], params[f"{name}_offset"] = kind, offset
            parts.append(
                f"""(SELECT array_agg(h ORDER BY h) FROM (
                       SELECT ({expr})::float8 AS h FROM {T} t
                       WHERE t.type = %({name}_type)s AND {cond} AND {where.sql()}
                       ORDER BY {expr} {"ASC" if ascending else "DESC"} OFFSET %({name}_offset)s LIMIT 2) s)"""
            )
            plan.append((half, kind, p, position, low))
    values: dict[tuple[int, str, float], float] = {}
    if parts:
        found = fetch_all("SELECT " + ", ".join(parts), params)[0]
        for (half, kind, p, position, low), pair in zip(plan, found, strict=True):
            # `pair` is sorted: [k-th, (k+1)-th] ascending, [(k-1)-th, k-th] descending
            if position == low:
                values[(half, kind, p)] = pair[0] if p <= 0.5 else pair[-1]
            else:  # float8_lerp in Postgres' percentile_cont
                values[(half, kind, p)] = pair[0] + ((position - low) * (pair[1] - pair[0]))
    return {
        kind: tuple(values.get((half, kind, p)) for half in (1, 2) for p in PERCENTILES)
        for kind in {kind for _half, kind, _n in counts}
    }


def response_times(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Median and p90 hours to first response (of tickets created in the range) and to resolution (resolved in it)."""
    tl = links.TicketLinks(filters, staff)
    where = _ticket_where(filters)
    first = "extract(epoch FROM t.first_response_at - t.created_at) / 3600.0"
    resolve = "extract(epoch FROM t.resolved_at - t.created_at) / 3600.0"
    in_first = "t.created_at >= %(start)s AND t.created_at < %(end)s AND t.first_response_at IS NOT NULL"
    in_resolve = "t.resolved_at >= %(start)s AND t.resolved_at < %(end)s"
    if rollups.usable(filters.tz) and filters.grain != "day":
        rows = _percentiles_by_ordered_scans(filters, where, first, resolve, in_first, in_resolve)
    else:
        # Two index-only range scans (covering indexes on created_at and resolved_at), one statement.
        sql = f"""
            SELECT type,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) FILTER (WHERE half = 1),
              percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) FILTER (WHERE half = 1),
              percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) FILTER (WHERE half = 2),
              percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) FILTER (WHERE half = 2)
            FROM (
              SELECT t.type, 1 AS half, {first} AS hours FROM {T} t WHERE {in_first} AND {where.sql()}
              UNION ALL
              SELECT t.type, 2 AS half, {resolve} AS hours FROM {T} t WHERE {in_resolve} AND {where.sql()}) x
            GROUP BY type
        """
        rows = {row[0]: row[1:] for row in fetch_all(sql, {**where.params, **_range_params(filters)})}
    types = [str(v) for v in Ticket.Type.values]
    labels = {str(v): str(label) for v, label in Ticket.Type.choices}

    def values(index: int) -> list[float | None]:
        out = []
        for kind in types:
            value = rows.get(kind, (None,) * 4)[index]
            out.append(round(float(value), 2) if value is not None else None)
        return out

    type_links = [tl.url(type=k) for k in types]
    return {
        "x": [labels[k] for k in types],
        "x_keys": types,
        "series": [
            {
                "key": "first_response_median",
                "name": _("First response, median"),
                "values": values(0),
                "links": type_links,
            },
            {
                "key": "first_response_p90",
                "name": _("First response, p90"),
                "values": values(1),
                "links": type_links,
            },
            {
                "key": "resolution_median",
                "name": _("Resolution, median"),
                "values": values(2),
                "links": type_links,
            },
            {"key": "resolution_p90", "name": _("Resolution, p90"), "values": values(3), "links": type_links},
        ],
        "unit": "hours",
    }


def workload(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Open tickets per assignee (unassigned included), stacked by urgency."""
    from accounts.models import User

    where = _ticket_where(filters)
    sql = f"""
        SELECT u.username, COALESCE(NULLIF(u.display_name, ''), u.username), t.urgency, count(*)
        FROM {T} t LEFT JOIN {User._meta.db_table} u ON u.id = t.assignee_id
        WHERE t.status = ANY(%(open)s) AND {where.sql()}
        GROUP BY 1, 2, 3
    """
    rows = fetch_all(sql, {**where.params, "open": OPEN})
    tl = links.TicketLinks(filters, staff)
    people: dict[Any, str] = {}
    counts: dict[tuple[Any, str], int] = {}
    for username, name, urgency, n in rows:
        people[username] = name or _("Unassigned")
        counts[(username, urgency)] = n
    order = sorted(
        people, key=lambda pk: (-sum(counts.get((pk, u), 0) for u in Ticket.Urgency.values), people[pk])
    )
    labels = {str(v): str(label) for v, label in Ticket.Urgency.choices}
    return {
        "x": [people[pk] for pk in order],
        "x_keys": [pk for pk in order],
        "series": [
            {
                "key": u,
                "name": labels[u],
                "values": [counts.get((pk, u), 0) for pk in order],
                "links": [tl.url(status="open", assignee=pk or "none", urgency=u) for pk in order],
            }
            for u in Ticket.Urgency.values
        ],
    }


def satisfaction(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Ratings given in the range: how many of each score, and the average."""
    where = _ticket_where(filters)
    # Join the tickets only when a ticket filter needs them.
    tickets = f"JOIN {T} t ON t.id = r.ticket_id" if where.parts else ""
    sql = f"""
        SELECT r.score, count(*)
        FROM {SatisfactionRating._meta.db_table} r {tickets}
        WHERE r.created_at >= %(start)s AND r.created_at < %(end)s AND {where.sql()}
        GROUP BY r.score
    """
    counts = dict(fetch_all(sql, {**where.params, **_range_params(filters)}))
    scores = [1, 2, 3, 4, 5]
    total = sum(counts.values())
    average = round(sum(score * n for score, n in counts.items()) / total, 2) if total else None
    return {
        "x": [str(s) for s in scores],
        "series": [{"key": "ratings", "name": _("Ratings"), "values": [counts.get(s, 0) for s in scores]}],
        "average": average,
        "total": total,
    }


def deflections(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Requests avoided because an article helped, per bucket (team = the requester's team)."""
    from accounts.models import User

    where = Where()
    if filters.team:
        where.add(f"d.user_id IN (SELECT id FROM {User._meta.db_table} WHERE team_id = {{}})", filters.team)
    sql = f"""
        WITH buckets AS ({bucket_series_sql()}),
        counted AS (
          SELECT date_trunc(%(grain)s, d.created_at AT TIME ZONE %(tz)s)::date AS bucket, count(*) AS n
          FROM {Deflection._meta.db_table} d
          WHERE d.created_at >= %(start)s AND d.created_at < %(end)s AND {where.sql()}
          GROUP BY 1)
        SELECT b.bucket, COALESCE(c.n, 0) FROM buckets b LEFT JOIN counted c USING (bucket) ORDER BY b.bucket
    """
    rows = fetch_all(sql, {**where.params, **_range_params(filters)})
    kb = links.knowledge_base_url()
    return {
        "x": [row[0].isoformat() for row in rows],
        "series": [
            {
                "key": "deflections",
                "name": _("Deflections"),
                "values": [row[1] for row in rows],
                "links": [kb for _row in rows],
            }
        ],
        "total": sum(row[1] for row in rows),
        "grain": filters.grain,
    }
