"""Where a click on a chart leads: the list behind a bar or point, with the matching filters."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

from analytics.filters import DashboardFilters


def _url(name: str, params: dict[str, str], *args: str) -> str:
    try:
        base = reverse(name, args=args)
    except NoReverseMatch:
        return ""
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return f"{base}?{query}" if query else base


def ticket_list_url(filters: DashboardFilters, *, staff: bool, **params: str) -> str:
    """The queue (support staff) or the team's request list, filtered like the chart plus `params`."""
    base = {
        "team": str(filters.team or ""),
        "urgency": filters.urgency,
        "channel": filters.channel,
        "campaign": filters.campaign,
    }
    base.update(params)
    return _url("tickets:queue" if staff else "tickets:my_requests", base)


def created_on(day: dt.date, last: dt.date | None = None) -> dict[str, str]:
    """Queue parameters for tickets created on a day (or from `day` to `last`)."""
    return {"created_from": day.isoformat(), "created_to": (last or day).isoformat()}


def resolved_on(day: dt.date, last: dt.date | None = None) -> dict[str, str]:
    """Queue parameters for tickets resolved or closed on a day (or from `day` to `last`)."""
    return {"resolved_from": day.isoformat(), "resolved_to": (last or day).isoformat()}


def campaign_list_url(filters: DashboardFilters, **params: str) -> str:
    base = {
        "team": str(filters.team or ""),
        "channel": filters.channel,
        "from": filters.date_from.isoformat(),
        "to": filters.date_to.isoformat(),
    }
    base.update(params)
    return _url("campaigns:index", base)


def campaign_url(code: str) -> str:
    return _url("campaigns:detail", {}, code)


def customer_list_url(**params: str) -> str:
    return _url("crm_tags:index", params)


def tag_url(slug: str) -> str:
    return _url("crm_tags:tag_detail", {}, slug) or customer_list_url(tag=slug)


def knowledge_base_url() -> str:
    return _url("knowledge_base:index", {})
