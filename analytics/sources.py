"""Data-source freshness: a warning when a source has not been fed for longer than its threshold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

# Hours after which a source counts as stale; override per source with settings.ANALYTICS_STALE_AFTER_HOURS.
DEFAULT_STALE_AFTER_HOURS = {
    "campaign_metrics": 48,
    "customer_events": 48,
    "tag_builds": 26,
    "sla_clock": 1,
}


@dataclass(frozen=True)
class Freshness:
    source: str
    last: dt.datetime | None
    stale: bool
    message: str


def _threshold(source: str) -> dt.timedelta:
    overrides = getattr(settings, "ANALYTICS_STALE_AFTER_HOURS", {})
    return dt.timedelta(hours=overrides.get(source, DEFAULT_STALE_AFTER_HOURS[source]))


def _last_campaign_import() -> dt.datetime | None:
    """When the newest metric rows arrived: the import time of the rows of the newest date (index-backed)."""
    from campaigns.models import DailyMetric

    newest = DailyMetric.objects.order_by("-date").values_list("date", flat=True).first()
    if newest is None:
        return None
    return DailyMetric.objects.filter(date=newest).aggregate(last=Max("imported_at"))["last"]


def _last_customer_event() -> dt.datetime | None:
    """max(occurred_at) of the events, as a skip scan of the (event_type, occurred_at) index: one
    probe per event type instead of reading every event (millions)."""
    from config.db_router import read_connection
    from crm_tags.models import Event

    table = Event._meta.db_table
    with read_connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE types AS (
              (SELECT event_type FROM {table} ORDER BY event_type LIMIT 1)
              UNION ALL
              SELECT (SELECT e.event_type FROM {table} e WHERE e.event_type > types.event_type
                      ORDER BY e.event_type LIMIT 1)
              FROM types WHERE types.event_type IS NOT NULL)
            SELECT max((SELECT max(e.occurred_at) FROM {table} e WHERE e.event_type = types.event_type))
            FROM types WHERE types.event_type IS NOT NULL
            """  # noqa: S608 - a model's table name only
        )
        return cursor.fetchone()[0]


def _last_tag_build() -> dt.datetime | None:
    from crm_tags.models import TagBuild

    return TagBuild.objects.filter(status=TagBuild.Status.DONE).aggregate(last=Max("finished_at"))["last"]


def _last_beat() -> dt.datetime | None:
    value = cache.get("beat:last_heartbeat")
    return parse_datetime(value) if value else None


SOURCES: dict[str, tuple[Callable[[], dt.datetime | None], Callable[[], str], Callable[[], str]]] = {
    "campaign_metrics": (
        _last_campaign_import,
        lambda: _("No campaign metrics imported since %(last)s."),
        lambda: _("No campaign metrics have been imported yet."),
    ),
    "customer_events": (
        _last_customer_event,
        lambda: _("No customer events since %(last)s."),
        lambda: _("No customer events have been imported yet."),
    ),
    "tag_builds": (
        _last_tag_build,
        lambda: _("No tag has been rebuilt since %(last)s."),
        lambda: _("No tag has been built yet."),
    ),
    "sla_clock": (
        _last_beat,
        lambda: _("The SLA clock (periodic tasks) last ran at %(last)s."),
        lambda: _("The SLA clock (periodic tasks) has not run yet."),
    ),
}


FRESHNESS_CACHE_SECONDS = 60


def _cached_last(source: str, load: Callable[[], dt.datetime | None]) -> dt.datetime | None:
    """A source's last time, looked up at most once a minute (every chart of a dashboard asks)."""
    key = f"analytics:source:{source}"
    cached = cache.get(key)
    if cached is not None:
        return parse_datetime(cached) if cached else None
    last = load()
    cache.set(key, last.isoformat() if last else "", FRESHNESS_CACHE_SECONDS)
    return last


def freshness(source: str, now: dt.datetime | None = None) -> Freshness:
    """Whether one source is older than its threshold (never fed counts as stale)."""
    load, message, never = SOURCES[source]
    now = now or timezone.now()
    last = _cached_last(source, load)
    if last is None:
        return Freshness(source, None, True, never())
    if now - last <= _threshold(source):
        return Freshness(source, last, False, "")
    return Freshness(
        source, last, True, message() % {"last": timezone.localtime(last).strftime("%Y-%m-%d %H:%M")}
    )
