"""Marketing figures: one aggregate query each over campaigns' daily metrics, ratios from campaigns.figures."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import F, QuerySet, Subquery, Sum
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics import links
from analytics.filters import DashboardFilters
from analytics.sql import bucket_dates
from campaigns import figures as fig
from campaigns.models import Campaign, DailyMetric

TOP_CAMPAIGNS = 8
METRICS = ("spend", "revenue", "roi", "roas", "cac", "ctr", "cvr")


def metric_labels() -> dict[str, str]:
    return {
        "spend": _("Spend"),
        "revenue": _("Revenue"),
        "roi": _("ROI"),
        "roas": _("ROAS"),
        "cac": _("CAC"),
        "ctr": _("CTR"),
        "cvr": _("CVR"),
    }


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


def _numbers(totals: dict[str, Any]) -> dict[str, Any]:
    """Totals and ratios as JSON numbers, via campaigns.figures (the one definition of each ratio)."""
    return fig.figures(totals)


def kpis(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Spend, revenue, ROI, ROAS, CAC, CTR, CVR over the range."""
    totals = _metrics(filters).aggregate(**fig.totals_annotations())
    numbers = _numbers(totals)
    labels = metric_labels()
    return {
        "tiles": [
            {
                "key": key,
                "label": labels[key],
                "value": numbers[key],
                "format": "money" if key in ("spend", "revenue", "cac") else "ratio",
            }
            for key in METRICS
        ],
        "totals": numbers,
    }


def funnel(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Impressions → clicks → leads → conversions over the range."""
    totals = _metrics(filters).aggregate(**fig.totals_annotations())
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


def _over_time(filters: DashboardFilters, dimension: str, qs: QuerySet[DailyMetric]) -> dict[str, Any]:
    rows = (
        qs.annotate(bucket=Trunc("date", filters.grain), group=F(dimension))
        .values("bucket", "group")
        .annotate(**fig.totals_annotations())
        .order_by("group", "bucket")
    )
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
    data = _over_time(filters, "channel", _metrics(filters))
    for series in data["series"]:
        series["link"] = links.campaign_list_url(filters, channel=series["key"])
    return data


def by_campaign_over_time(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Every metric per campaign per bucket, for the campaigns with the most spend in the range."""
    qs = _metrics(filters)
    top = qs.values("campaign_id").annotate(total=Sum("spend")).order_by("-total", "campaign_id")
    data = _over_time(
        filters,
        "campaign__code",
        qs.filter(campaign_id__in=Subquery(top.values("campaign_id")[:TOP_CAMPAIGNS])),
    )
    for series in data["series"]:
        series["link"] = links.campaign_url(series["key"])
    return data


def by_channel(filters: DashboardFilters, *, staff: bool) -> dict[str, Any]:
    """Totals and ratios per channel over the range."""
    rows = list(
        _metrics(filters).values("channel").annotate(**fig.totals_annotations()).order_by("-spend", "channel")
    )
    numbers = [_numbers(row) for row in rows]
    return {
        "x": [row["channel"] for row in rows],
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
    rows = list(
        _metrics(filters)
        .values(code=F("campaign__code"))
        .annotate(**fig.totals_annotations())
        .order_by("-spend", "code")[:20]
    )
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
    rows = list(
        qs.values("code", "budget", "start_date", "end_date")
        .annotate(spend=fig.totals_annotations("daily_metrics__")["spend"])
        .order_by("end_date", "code")[:30]
    )
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
