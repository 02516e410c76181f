"""Where a click on a chart leads: the list behind a bar or point, with the matching filters.

The queue understands status (a status, `open`, `done` or `all`), type, urgency, sla_state,
assignee (a username or `none`), team (id) and campaign (id); see tickets.selectors.TicketFilters.
Requesters have no queue: their clicks open their team's request list with the nearest chip.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

from analytics.filters import DashboardFilters

REQUESTER_CHIPS = {"open": "open", "done": "done", "waiting_on_requester": "waiting"}


def _url(name: str, params: dict[str, str], *args: str) -> str:
    try:
        base = reverse(name, args=args)
    except NoReverseMatch:
        return ""
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return f"{base}?{query}" if query else base


@dataclass
class TicketLinks:
    """Builds ticket-list links for one chart: the dashboard filters resolved once (campaign code → id)."""

    filters: DashboardFilters
    staff: bool
    base: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from campaigns.models import Campaign

        campaign_id = ""
        if self.filters.campaign and self.staff:
            found = Campaign.objects.filter(code=self.filters.campaign).values_list("id", flat=True).first()
            campaign_id = str(found or "")
        self.base = {
            "team": str(self.filters.team or ""),
            "urgency": self.filters.urgency,
            "campaign": campaign_id,
        }

    def url(self, **params: str) -> str:
        """The queue filtered like the chart plus `params` (staff), or the team's list (everyone else)."""
        if not self.staff:
            chip = REQUESTER_CHIPS.get(params.get("status", ""), "")
            return _url("tickets:my_requests", {"chip": chip})
        query = {**self.base, **params}
        query.setdefault("status", "all")
        return _url("tickets:queue", query)


def created_on(day: dt.date, last: dt.date | None = None) -> dict[str, str]:
    """Parameters for tickets created from `day` to `last` (for a queue that filters by date)."""
    return {"created_from": day.isoformat(), "created_to": (last or day).isoformat()}


def resolved_on(day: dt.date, last: dt.date | None = None) -> dict[str, str]:
    """Parameters for tickets resolved or closed from `day` to `last`."""
    return {"resolved_from": day.isoformat(), "resolved_to": (last or day).isoformat()}


def campaign_list_url(filters: DashboardFilters, **params: str) -> str:
    base = {
        "team": str(filters.team or ""),
        "channel": filters.channel,
        "date_from": filters.date_from.isoformat(),
        "date_to": filters.date_to.isoformat(),
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
