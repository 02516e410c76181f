"""Marketing figures: one aggregate query each over campaigns' daily metrics, ratios from campaigns.figures."""

# SQL is assembled from model table names and fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.value_labels import channel_label
from analytics import links, rollups
from analytics.filters import DashboardFilters
from analytics.sql import Where, bucket_dates, fetch_all, memoized
from campaigns import figures as fig
from campaigns.models import Campaign, DailyMetric
from config.db_router import read_connection

TOP_CAMPAIGNS = 8
TOP_CAMPAIGNS_BAR = 20
MONEY = ("spend", "revenue")
COUNTS = ("impressions", "clicks", "leads", "conversions")
# Sums as Django's totals_annotations() gives them: money as numeric, counts as integers, 0 when no rows.
SUMS_SQL = ", ".join(
    [f"COALESCE(sum({c}), 0)::numeric AS {c}" for c in MONEY]
    + [f"COALESCE(sum({c}), 0)::bigint AS {c}" for c in COUNTS]
)
METRICS = ("spend", "revenue", "roi", "roas", "cac", "ctr", "cvr")


def metric_labels() -> dict[str, str]:
    return {key: str(fig.LABELS[key]) for key in ("spend", "revenue", "roi", "roas", "cac", "ctr", "cvr")}


def _metrics(filters: DashboardFilters) -> QuerySet[DailyMetric]:
    """Daily metric rows in the date range, filtered by team, channel and campaign."""
    qs = DailyMetric.objects.filter(date__gte=filters.date_from, date__lte=filters.date_to)
    if filters.team:
        qs = qs.filter(campaign__team_id=filters.team)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.campaign:
        qs = qs.filter(campaign__code=filters.campaign)
    return qs


def _use_channel_days(filters: DashboardFilters) -> bool:
    """The (date, channel) rollup answers when no filter needs the campaign (team, campaign)."""
    return not filters.team and not filters.campaign


def _channel_day_rows(
    filters: DashboardFilters, groups: tuple[str, ...] = (), order: str = ""
) -> list[dict[str, Any]]:
    """Sums from the (date, channel) rollup over the range, grouped by the `groups` SQL expressions."""
    where = Where()
    if filters.channel:
        where.add("r.channel = {}", filters.channel)
    select = "".join(f"{g}, " for g in groups)
    grouping = ""
    if groups:  # groups with metric rows only, as a GROUP BY over the rows themselves gives
        grouping = "GROUP BY " + ", ".join(str(i + 1) for i in range(len(groups))) + " HAVING sum(n) > 0"
    sql = f"""
        SELECT {select}{SUMS_SQL}
        FROM {rollups.CHANNEL_DAY} r
        WHERE r.date >= %(date_from)s AND r.date <= %(date_to)s AND {where.sql()}
        {grouping} {order}
    """
    with read_connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                **where.params,
                "date_from": filters.date_from,
                "date_to": filters.date_to,
                "grain": filters.grain,
            },
        )
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _range_totals(filters: DashboardFilters) -> dict[str, Any]:
    """Totals over the range (key figures and funnel share them)."""

    def compute() -> dict[str, Any]:
        if _use_channel_days(filters):
            return _channel_day_rows(filters)[0]
        return _metrics(filters).aggregate(**fig.totals_annotations())

    return memoized(("marketing_totals", filters), compute)


def _month_split(filters: DashboardFilters) -> tuple[dt.date, dt.date]:
    """[full_from, full_to): the whole months inside the range (empty: both the day after the range)."""
    first = filters.date_from
    full_from = first if first.day == 1 else (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    full_to = (filters.date_to + dt.timedelta(days=1)).replace(day=1)
    if full_from >= full_to:
        after = filters.date_to + dt.timedelta(days=1)
        return after, after
    return full_from, full_to


def _campaign_ranking(filters: DashboardFilters) -> list[dict[str, Any]]:
    """Per campaign totals over the range, for the campaigns ranked in the top by spend.

    Whole months come from the (month, campaign, channel) rollup, the days before the first and
    after the last whole month from the metric rows. `by_code` ranks as the bar chart orders
    (spend, then code), `by_id` as the over-time chart picks its campaigns (spend, then id).
    """

    def compute() -> list[dict[str, Any]]:
        where, outer = Where(), Where("o")
        if filters.channel:
            where.add("channel = {}", filters.channel)
        if filters.team:
            outer.add("c.team_id = {}", filters.team)
        if filters.campaign:
            outer.add("c.code = {}", filters.campaign)
        cols = ", ".join([*MONEY, *COUNTS])
        sql = f"""
            WITH per AS (
              SELECT campaign_id, {SUMS_SQL}, sum(n) AS n FROM (
                SELECT campaign_id, {cols}, n FROM {rollups.CAMPAIGN_MONTH}
                WHERE month >= %(full_from)s AND month < %(full_to)s AND {where.sql()}
                UNION ALL
                SELECT campaign_id, {cols}, 1 FROM {DailyMetric._meta.db_table}
                WHERE ((date >= %(date_from)s AND date < %(full_from)s) OR (date >= %(full_to)s AND date <= %(date_to)s))
                  AND {where.sql()}) x
              GROUP BY campaign_id HAVING sum(n) > 0),
            ranked AS (
              SELECT c.code, per.*,
                     row_number() OVER (ORDER BY per.spend DESC, c.code) AS by_code,
                     row_number() OVER (ORDER BY per.spend DESC, per.campaign_id) AS by_id
              FROM per JOIN {Campaign._meta.db_table} c ON c.id = per.campaign_id WHERE {outer.sql()})
            SELECT * FROM ranked WHERE by_code <= %(top_bar)s OR by_id <= %(top_line)s
        """
        full_from, full_to = _month_split(filters)
        params = {
            **where.params,
            **outer.params,
            "date_from": filters.date_from,
            "date_to": filters.date_to,
            "full_from": full_from,
            "full_to": full_to,
            "top_bar": TOP_CAMPAIGNS_BAR,
            "top_line": TOP_CAMPAIGNS,
        }
        with read_connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    return memoized(("marketing_campaign_ranking", filters), compute)


def _numbers(totals: dict[str, Any]) -> dict[str, Any]:
    """Totals and ratios as JSON numbers, via campaigns.figures (the one definition of each ratio)."""
    return fig.figures(totals)


def kpis(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Spend, revenue, ROI, ROAS, CAC, CTR, CVR over the range."""
    totals = _range_totals(filters)
    numbers = _numbers(totals)
    labels = metric_labels()
    return {
        "tiles": [
            {
                "key": key,
                "label": labels[key],
                "value": numbers[key],
                "format": fig.FORMATS[key],
            }
            for key in METRICS
        ],
        "totals": numbers,
    }


def funnel(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Impressions → clicks → leads → conversions over the range."""
    totals = _range_totals(filters)
    steps = fig.funnel(totals)
    names = {
        "impressions": _("Impressions"),
        "clicks": _("Clicks"),
        "leads": _("Leads"),
        "conversions": _("Conversions"),
    }
    return {
        "x": [names[s["step"]] for s in steps],
        "x_keys": [s["step"] for s in steps],
        "series": [
            {
                "key": "funnel",
                "name": _("Funnel"),
                "values": [s["value"] for s in steps],
                "rates": [s["rate"] for s in steps],
            }
        ],
    }


def _over_time_rows(
    filters: DashboardFilters, dimension: str, qs: QuerySet[DailyMetric]
) -> QuerySet[DailyMetric] | list[dict[str, Any]]:
    return (
        qs.annotate(bucket=Trunc("date", filters.grain), group=F(dimension))
        .values("bucket", "group")
        .annotate(**fig.totals_annotations())
        .order_by("group", "bucket")
    )


def _over_time(filters: DashboardFilters, rows: Any) -> dict[str, Any]:
    buckets = bucket_dates(filters.date_from, filters.date_to, filters.grain)
    by_group: dict[str, dict[dt.date, dict[str, Any]]] = {}
    for row in rows:
        by_group.setdefault(row["group"], {})[row["bucket"]] = _numbers(row)
    empty = _numbers({})
    series = []
    for group, points in by_group.items():
        filled = [points.get(b, empty) for b in buckets]
        series.append({"key": group, "name": group, "metrics": {m: [p[m] for p in filled] for m in METRICS}})
    return {
        "x": [b.isoformat() for b in buckets],
        "series": series,
        "metrics": metric_labels(),
        "default_metric": "spend",
        "grain": filters.grain,
    }


def by_channel_over_time(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Every metric per channel per bucket (the viewer picks the metric)."""
    if _use_channel_days(filters):
        rows: Any = _channel_day_rows(
            filters,
            ("date_trunc(%(grain)s, r.date::timestamp)::date AS bucket", 'r.channel AS "group"'),
            'ORDER BY "group", bucket',
        )
    else:
        rows = _over_time_rows(filters, "channel", _metrics(filters))
    data = _over_time(filters, rows)
    for series in data["series"]:
        series["name"] = channel_label(series["key"])
        series["link"] = links.campaign_list_url(filters, channel=series["key"])
    return data


def by_campaign_over_time(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Every metric per campaign per bucket, for the campaigns with the most spend in the range."""
    top = [row["campaign_id"] for row in _campaign_ranking(filters) if row["by_id"] <= TOP_CAMPAIGNS]
    qs = _metrics(filters).filter(campaign_id__in=top)
    data = _over_time(filters, _over_time_rows(filters, "campaign__code", qs))
    for series in data["series"]:
        series["link"] = links.campaign_url(series["key"])
    return data


def by_channel(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Totals and ratios per channel over the range."""
    if _use_channel_days(filters):
        rows = _channel_day_rows(filters, ("r.channel AS channel",), "ORDER BY spend DESC, channel")
    else:
        rows = list(
            _metrics(filters)
            .values("channel")
            .annotate(**fig.totals_annotations())
            .order_by("-spend", "channel")
        )
    numbers = [_numbers(row) for row in rows]
    return {
        "x": [row["channel"] for row in rows],
        "x_labels": [channel_label(row["channel"]) for row in rows],
        "series": [
            {
                "key": m,
                "name": metric_labels()[m],
                "values": [n[m] for n in numbers],
                "links": [links.campaign_list_url(filters, channel=row["channel"]) for row in rows],
            }
            for m in METRICS
        ],
        "default_metric": "spend",
    }


def by_campaign(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Totals and ratios per campaign (the 20 with the most spend in the range)."""
    ranked = [row for row in _campaign_ranking(filters) if row["by_code"] <= TOP_CAMPAIGNS_BAR]
    rows = sorted(ranked, key=lambda row: row["by_code"])
    numbers = [_numbers(row) for row in rows]
    return {
        "x": [row["code"] for row in rows],
        "series": [
            {
                "key": m,
                "name": metric_labels()[m],
                "values": [n[m] for n in numbers],
                "links": [links.campaign_url(row["code"]) for row in rows],
            }
            for m in METRICS
        ],
        "default_metric": "spend",
    }


def budget_burn(filters: DashboardFilters, *, staff: bool, today: dt.date | None = None) -> dict[str, Any]:
    """Running campaigns: share of budget spent to date against share of the schedule elapsed."""
    today = today or timezone.localdate(timezone=filters.zone)
    qs = Campaign.objects.filter(status=Campaign.Status.RUNNING)
    if filters.team:
        qs = qs.filter(team_id=filters.team)
    if filters.channel:
        qs = qs.filter(channels__contains=[filters.channel])
    if filters.campaign:
        qs = qs.filter(code=filters.campaign)
    rows = list(qs.values("id", "code", "budget", "start_date", "end_date").order_by("end_date", "code")[:30])
    # Spend to date from the (month, campaign, channel) rollup: a few rows per campaign.
    spent = dict(
        fetch_all(
            f"SELECT campaign_id, sum(spend) FROM {rollups.CAMPAIGN_MONTH}"
            " WHERE campaign_id = ANY(%(ids)s) GROUP BY campaign_id",
            {"ids": [row["id"] for row in rows]},
        )
    )
    for row in rows:
        row["spend"] = spent.get(row["id"]) or Decimal("0")
    used = [fig.ratios({"spend": row["spend"]}, budget=row["budget"])["budget_used_pct"] for row in rows]

    def elapsed(row: dict[str, Any]) -> float:
        days = (row["end_date"] - row["start_date"]).days + 1
        done = min(max((today - row["start_date"]).days + 1, 0), days)
        return round(done / days, 4)

    return {
        "x": [row["code"] for row in rows],
        "series": [
            {
                "key": "budget_used",
                "name": _("Budget used"),
                "values": used,
                "links": [links.campaign_url(row["code"]) for row in rows],
            },
            {
                "key": "time_elapsed",
                "name": _("Time elapsed"),
                "values": [elapsed(row) for row in rows],
                "links": [links.campaign_url(row["code"]) for row in rows],
            },
        ],
        "budget": [float(row["budget"]) for row in rows],
        "spend": [float(row["spend"]) for row in rows],
        "unit": "share",
    }
