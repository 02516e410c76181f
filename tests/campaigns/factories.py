"""Factories for campaign tests."""

import datetime as dt
from decimal import Decimal
from typing import Any

from accounts.models import User
from campaigns.models import Campaign, DailyMetric

_counter = {"n": 0}


def campaign_make(*, owner: User, **overrides: Any) -> Campaign:
    """A campaign in planning for the owner's team, saved directly (tests of services build their own)."""
    _counter["n"] += 1
    n = _counter["n"]
    values: dict[str, Any] = {
        "name": f"Campaign {n}",
        "code": f"camp-{n}",
        "objective": "Sell more",
        "budget": Decimal("10000"),
        "start_date": dt.date(2026, 6, 1),
        "end_date": dt.date(2026, 6, 30),
        "channels": ["wechat", "douyin"],
        "owner": owner,
        "team_id": owner.team_id,
    }
    values.update(overrides)
    return Campaign.objects.create(**values)


def metric_make(*, campaign: Campaign, date: dt.date, channel: str = "wechat", **figures: Any) -> DailyMetric:
    values: dict[str, Any] = {
        "spend": Decimal("0"),
        "impressions": 0,
        "clicks": 0,
        "leads": 0,
        "conversions": 0,
        "revenue": Decimal("0"),
    }
    values.update(figures)
    return DailyMetric.objects.create(campaign=campaign, date=date, channel=channel, **values)


def csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")
