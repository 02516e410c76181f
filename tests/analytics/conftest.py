"""Analytics fixtures: people per role with fixed time zones, and a frozen dashboard filter set."""

import datetime as dt

import pytest

from analytics.filters import DashboardFilters


@pytest.fixture
def november() -> DashboardFilters:
    """1–30 November 2026 in Asia/Shanghai (UTC+8, no DST), every team."""
    return DashboardFilters(date_from=dt.date(2026, 11, 1), date_to=dt.date(2026, 11, 30), tz="Asia/Shanghai")


@pytest.fixture
def analyst(make_user, support_team):
    """An agent (support staff): runs reports, has no dashboards of their own."""
    return make_user("analyst", role="agent", team=support_team.name)
