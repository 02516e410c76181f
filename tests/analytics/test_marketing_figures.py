"""Marketing figures over hand-made daily metrics; ratios come from campaigns.figures."""

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from analytics import marketing_figures as mf
from tests.analytics.factories import campaign_make, metric_make

pytestmark = pytest.mark.django_db
D = dt.date


@pytest.fixture
def metrics(requester, other_requester):
    spring = campaign_make(owner=requester, code="spring", budget=Decimal("1000"))
    flash = campaign_make(
        owner=other_requester, code="flash", budget=Decimal("500"), end_date=D(2026, 11, 10)
    )
    metric_make(
        campaign=spring,
        date=D(2026, 11, 2),
        channel="wechat",
        spend=Decimal("100"),
        impressions=1000,
        clicks=100,
        leads=20,
        conversions=10,
        revenue=Decimal("300"),
    )
    metric_make(
        campaign=spring,
        date=D(2026, 11, 2),
        channel="douyin",
        spend=Decimal("200"),
        impressions=4000,
        clicks=100,
        leads=10,
        conversions=5,
        revenue=Decimal("100"),
    )
    metric_make(
        campaign=flash,
        date=D(2026, 11, 3),
        channel="wechat",
        spend=Decimal("100"),
        impressions=1000,
        clicks=50,
        leads=5,
        conversions=5,
        revenue=Decimal("400"),
    )
    # Outside the range: counts for budget burn (all spend to date), not for November's figures.
    metric_make(campaign=spring, date=D(2026, 10, 31), channel="wechat", spend=Decimal("999"))
    return spring, flash


def test_kpis_over_the_range(metrics, november):
    totals = mf.kpis(november, staff=True)["totals"]
    assert totals["spend"] == 400.0
    assert totals["revenue"] == 800.0
    assert totals["roi"] == 1.0
    assert totals["roas"] == 2.0
    assert totals["cac"] == 20.0
    assert totals["ctr"] == pytest.approx(250 / 6000)
    assert totals["cvr"] == pytest.approx(0.08)


def test_by_channel(metrics, november):
    data = mf.by_channel(november, staff=True)
    roas = dict(zip(data["x"], next(s for s in data["series"] if s["key"] == "roas")["values"], strict=True))
    roi = dict(zip(data["x"], next(s for s in data["series"] if s["key"] == "roi")["values"], strict=True))
    assert roas == {"wechat": 3.5, "douyin": 0.5}
    assert roi["douyin"] == -0.5


def test_team_filter(metrics, november, requester):
    totals = mf.kpis(dataclasses.replace(november, team=requester.team_id), staff=True)["totals"]
    assert totals["spend"] == 300.0
    assert totals["roi"] == pytest.approx(1 / 3)


def test_campaign_and_channel_filters(metrics, november):
    flash = mf.kpis(dataclasses.replace(november, campaign="flash"), staff=True)["totals"]
    douyin = mf.kpis(dataclasses.replace(november, channel="douyin"), staff=True)["totals"]
    assert flash["spend"] == 100.0
    assert douyin["spend"] == 200.0


def test_funnel(metrics, november):
    data = mf.funnel(november, staff=True)
    assert data["series"][0]["values"] == [6000, 250, 35, 20]
    assert data["series"][0]["rates"][1] == pytest.approx(250 / 6000)
    assert data["series"][0]["rates"][3] == pytest.approx(20 / 35)


def test_budget_burn_of_running_campaigns(metrics, november):
    data = mf.budget_burn(november, staff=True, today=D(2026, 11, 10))
    used = dict(zip(data["x"], data["series"][0]["values"], strict=True))
    elapsed = dict(zip(data["x"], data["series"][1]["values"], strict=True))
    assert used == {"flash": 0.2, "spring": 1.299}
    assert elapsed == {"flash": 1.0, "spring": pytest.approx(1 / 3, abs=1e-4)}


def test_over_time_by_channel_fills_every_day(metrics, november):
    data = mf.by_channel_over_time(november, staff=True)
    wechat = next(s for s in data["series"] if s["key"] == "wechat")
    spend = dict(zip(data["x"], wechat["metrics"]["spend"], strict=True))
    assert len(data["x"]) == 30
    assert spend["2026-11-02"] == 100.0 and spend["2026-11-03"] == 100.0 and spend["2026-11-04"] == 0.0
    assert wechat["link"].startswith("/campaigns/?") and "channel=wechat" in wechat["link"]


def test_over_time_by_campaign_and_links(metrics, november):
    data = mf.by_campaign_over_time(november, staff=True)
    assert {s["key"] for s in data["series"]} == {"spring", "flash"}
    assert next(s for s in data["series"] if s["key"] == "flash")["link"] == "/campaigns/flash/"


def test_weekly_buckets_for_a_long_range(metrics):
    from analytics.filters import DashboardFilters

    quarter = DashboardFilters(date_from=D(2026, 8, 1), date_to=D(2026, 11, 30))
    data = mf.by_channel_over_time(quarter, staff=True)
    assert data["grain"] == "week"
    assert data["x"][0] == "2026-07-27"  # the Monday of the week of 1 August
