"""Dashboard filters: parsed once (page, chart endpoints and API alike), normalised, and part of the cache key."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zoneinfo
from dataclasses import asdict, dataclass, replace
from typing import Any

from django import forms
from django.conf import settings
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from analytics.permissions import DashboardScope
from config.forms import BootstrapFormMixin

DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366
URGENCIES = (("urgent", _("Urgent")), ("routine", _("Routine")), ("planned", _("Planned")))


@dataclass(frozen=True)
class DashboardFilters:
    """One set of filters, with the viewer's time zone: dates are whole days in that zone."""

    date_from: dt.date
    date_to: dt.date
    tz: str = settings.TIME_ZONE
    team: int | None = None
    channel: str = ""
    campaign: str = ""  # campaign code
    urgency: str = ""

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    @property
    def start(self) -> dt.datetime:
        """The first instant of `date_from` in the viewer's zone."""
        return dt.datetime.combine(self.date_from, dt.time.min, tzinfo=self.zone)

    @property
    def end(self) -> dt.datetime:
        """The first instant after `date_to` in the viewer's zone (ranges are half-open)."""
        return dt.datetime.combine(self.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=self.zone)

    @property
    def grain(self) -> str:
        """Bucket size for time series: days up to a quarter, then weeks, then months."""
        days = (self.date_to - self.date_from).days + 1
        if days <= 92:
            return "day"
        if days <= 731:
            return "week"
        return "month"

    def scoped(self, scope: DashboardScope) -> DashboardFilters:
        """The filters a scope allows: a team-scoped viewer always gets their own team."""
        if scope.all_teams:
            return self
        return replace(self, team=scope.team_id)

    def query(self, **overrides: Any) -> dict[str, str]:
        """The filters as URL parameters (empty ones left out), for shareable links."""
        values = {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "team": str(self.team) if self.team else "",
            "channel": self.channel,
            "campaign": self.campaign,
            "urgency": self.urgency,
        }
        values.update({k: str(v) for k, v in overrides.items()})
        return {k: v for k, v in values.items() if v}

    def fingerprint(self) -> str:
        """A short stable hash of every field (the cache key part)."""
        data = asdict(self)
        data["date_from"] = self.date_from.isoformat()
        data["date_to"] = self.date_to.isoformat()
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:24]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "team": self.team,
            "channel": self.channel,
            "campaign": self.campaign,
            "urgency": self.urgency,
            "time_zone": self.tz,
        }


class DashboardFilterForm(BootstrapFormMixin, forms.Form):
    """The filter bar; the same form validates the API's query parameters."""

    team = forms.TypedChoiceField(label=_("Team"), required=False, coerce=int, empty_value=None)
    channel = forms.CharField(label=_("Channel"), required=False, max_length=40)
    campaign = forms.CharField(label=_("Campaign code"), required=False, max_length=60)
    urgency = forms.ChoiceField(
        label=_("Urgency"), required=False, choices=[("", _("Any urgency")), *URGENCIES]
    )

    def __init__(
        self, data: QueryDict | dict | None = None, *, tz: str = settings.TIME_ZONE, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        today = timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date()
        self.tz = tz
        self.today = today
        # "from" is a Python keyword, so these two fields are added by name.
        date_widget = forms.DateInput(attrs={"type": "date", "class": "form-control"})
        self.fields["from"] = forms.DateField(label=_("From"), required=False, widget=date_widget)
        self.fields["to"] = forms.DateField(label=_("To"), required=False, widget=date_widget)
        self.order_fields(["from", "to", "team", "channel", "campaign", "urgency"])
        self.fields["team"].choices = [("", _("All teams")), *Team.objects.values_list("id", "name")]

    def clean_channel(self) -> str:
        return self.cleaned_data["channel"].strip().lower()

    def clean_campaign(self) -> str:
        return self.cleaned_data["campaign"].strip().lower()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        date_to = data.get("to") or self.today
        date_from = data.get("from") or (date_to - dt.timedelta(days=DEFAULT_DAYS - 1))
        if date_from > date_to:
            self.add_error("to", _("The end date must not be before the start date."))
        elif (date_to - date_from).days >= MAX_DAYS:
            self.add_error("from", _("Choose a range of at most three years."))
        data["from"], data["to"] = date_from, date_to
        return data

    def filters(self) -> DashboardFilters:
        """The validated filters (call after is_valid())."""
        data = self.cleaned_data
        return DashboardFilters(
            date_from=data["from"],
            date_to=data["to"],
            tz=self.tz,
            team=data.get("team"),
            channel=data.get("channel", ""),
            campaign=data.get("campaign", ""),
            urgency=data.get("urgency", ""),
        )


def viewer_time_zone(user: Any) -> str:
    """The person's own time zone (also for token-authenticated API calls), or the site default."""
    name = getattr(user, "timezone", "") or settings.TIME_ZONE
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return settings.TIME_ZONE
    return name
