"""The dashboards' charts: what each one is, and its cached payload per filter set ("as of" + warnings)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from analytics import customer_figures, marketing_figures, support_figures
from analytics.filters import DashboardFilters
from analytics.permissions import CUSTOMERS, MARKETING, SUPPORT
from analytics.sources import freshness
from analytics.sql import dashboard_transaction, shared_results
from config.db_router import replica_reads

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass(frozen=True)
class Chart:
    """One chart: its key, how it is drawn (`kind`), the aggregate that feeds it, the sources it reads."""

    key: str
    dashboard: str
    title: str | Promise
    kind: str
    compute: Callable[..., dict[str, Any]]
    sources: tuple[str, ...] = ()
    help: str | Promise = ""
    wide: bool = False


CHARTS: dict[str, list[Chart]] = {
    SUPPORT: [
        Chart("kpis", SUPPORT, _("Key figures"), "kpis", support_figures.kpis, ("sla_clock",), wide=True),
        Chart(
            "inflow_outflow",
            SUPPORT,
            _("Opened and closed"),
            "grouped_bar",
            support_figures.inflow_outflow,
            help=_("Tickets opened and closed per period."),
            wide=True,
        ),
        Chart(
            "backlog",
            SUPPORT,
            _("Backlog by status and age"),
            "stacked_bar",
            support_figures.backlog,
            help=_("Open tickets now, stacked by age."),
        ),
        Chart(
            "sla_attainment",
            SUPPORT,
            _("SLA attainment by urgency"),
            "grouped_bar",
            support_figures.sla_attainment,
            ("sla_clock",),
            help=_("Share of tickets created in the range that met their target (paused time excluded)."),
        ),
        Chart(
            "response_times",
            SUPPORT,
            _("Time to first response and resolution (hours)"),
            "grouped_bar",
            support_figures.response_times,
            help=_("Median and 90th percentile by type."),
        ),
        Chart("workload", SUPPORT, _("Open tickets per agent"), "stacked_bar", support_figures.workload),
        Chart(
            "satisfaction",
            SUPPORT,
            _("Satisfaction"),
            "bar",
            support_figures.satisfaction,
            help=_("Ratings given in the range, by score."),
        ),
        Chart(
            "deflections",
            SUPPORT,
            _("Deflections"),
            "line",
            support_figures.deflections,
            help=_("Requests avoided because a knowledge article helped."),
        ),
    ],
    MARKETING: [
        Chart(
            "kpis",
            MARKETING,
            _("Key figures"),
            "kpis",
            marketing_figures.kpis,
            ("campaign_metrics",),
            wide=True,
        ),
        Chart(
            "by_channel_over_time",
            MARKETING,
            _("By channel over time"),
            "metric_line",
            marketing_figures.by_channel_over_time,
            ("campaign_metrics",),
            wide=True,
        ),
        Chart(
            "by_campaign_over_time",
            MARKETING,
            _("By campaign over time"),
            "metric_line",
            marketing_figures.by_campaign_over_time,
            ("campaign_metrics",),
            wide=True,
        ),
        Chart(
            "by_channel",
            MARKETING,
            _("By channel"),
            "metric_bar",
            marketing_figures.by_channel,
            ("campaign_metrics",),
        ),
        Chart(
            "by_campaign",
            MARKETING,
            _("By campaign"),
            "metric_bar",
            marketing_figures.by_campaign,
            ("campaign_metrics",),
        ),
        Chart("funnel", MARKETING, _("Funnel"), "funnel", marketing_figures.funnel, ("campaign_metrics",)),
        Chart(
            "budget_burn",
            MARKETING,
            _("Budget burn of running campaigns"),
            "grouped_bar",
            marketing_figures.budget_burn,
            ("campaign_metrics",),
            help=_("Share of the budget spent against share of the schedule elapsed."),
        ),
    ],
    CUSTOMERS: [
        Chart(
            "kpis",
            CUSTOMERS,
            _("Key figures"),
            "kpis",
            customer_figures.kpis,
            ("customer_events",),
            wide=True,
        ),
        Chart(
            "tag_sizes",
            CUSTOMERS,
            _("Tag sizes over time"),
            "line",
            customer_figures.tag_sizes,
            ("tag_builds",),
            help=_("Members of the ten largest tags."),
        ),
        Chart(
            "entered_exited",
            CUSTOMERS,
            _("Entered and exited per period"),
            "diverging_bar",
            customer_figures.entered_exited,
            ("tag_builds",),
        ),
        Chart(
            "cohorts",
            CUSTOMERS,
            _("Retention cohorts by signup month"),
            "heatmap",
            customer_figures.cohorts,
            ("customer_events",),
            help=_("Share of each signup month's customers with an order in month 0, 1, 2, ..."),
            wide=True,
        ),
    ],
}


def chart_get(dashboard: str, key: str) -> Chart | None:
    return next((chart for chart in CHARTS.get(dashboard, []) if chart.key == key), None)


def cache_seconds() -> int:
    return int(getattr(settings, "ANALYTICS_CACHE_SECONDS", 600))


def cache_key(chart: Chart, filters: DashboardFilters, *, staff: bool) -> str:
    """Per chart, filter set, language and link target (staff open the queue, others their team's list)."""
    language = translation.get_language() or settings.LANGUAGE_CODE
    return (
        f"analytics:v{CACHE_VERSION}:{chart.dashboard}:{chart.key}:{filters.fingerprint()}:"
        f"{language}:{'staff' if staff else 'team'}"
    )


def chart_payload(
    chart: Chart, filters: DashboardFilters, *, staff: bool, refresh: bool = False
) -> dict[str, Any]:
    """The chart's figures from the cache, or computed now (always when `refresh`) and cached."""
    key = cache_key(chart, filters, staff=staff)
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return {**cached, "cached": True}
    started = time.monotonic()
    # on the replica when it serves (config/db_router.py): "as of" is then its replay time, not now
    with replica_reads() as reads:
        with dashboard_transaction():
            data = chart.compute(filters, staff=staff)
        warnings = [fresh.message for fresh in (freshness(source) for source in chart.sources) if fresh.stale]
    payload = {
        "key": chart.key,
        "title": str(chart.title),
        "kind": chart.kind,
        "as_of": (reads.as_of() if reads.on_replica else timezone.now()).isoformat(),
        "warnings": warnings,
        "data": data,
        **reads.as_dict(),
    }
    cache.set(key, payload, cache_seconds())
    log.info(
        "analytics chart %s/%s computed in %.3fs", chart.dashboard, chart.key, time.monotonic() - started
    )
    return {**payload, "cached": False}


def dashboard_payload(
    dashboard: str, filters: DashboardFilters, *, staff: bool, refresh: bool = False
) -> dict[str, Any]:
    """Every chart of a dashboard; `as_of` is the oldest chart's time (the whole answer is at least that fresh)."""
    # Charts needing the same aggregate (key figures and funnel, both campaign rankings) run it once.
    with replica_reads() as reads, shared_results(), dashboard_transaction():
        charts = {
            chart.key: chart_payload(chart, filters, staff=staff, refresh=refresh)
            for chart in CHARTS[dashboard]
        }
    warnings = sorted({w for payload in charts.values() for w in payload["warnings"]})
    return {
        "dashboard": dashboard,
        "as_of": min(payload["as_of"] for payload in charts.values()),
        "filters": filters.as_dict(),
        "warnings": warnings,
        "charts": charts,
        **reads.as_dict(),
    }
