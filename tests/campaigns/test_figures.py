"""Every formula against hand-computed numbers, including zero denominators."""

import datetime as dt
from decimal import Decimal

import pytest

from campaigns import figures
from campaigns.models import DailyMetric
from tests.campaigns.factories import campaign_make, metric_make

TOTALS = {
    "spend": Decimal("2000"),
    "revenue": Decimal("5000"),
    "impressions": 100_000,
    "clicks": 2_500,
    "leads": 400,
    "conversions": 100,
}


def test_roi_is_profit_over_spend():
    # (5000 - 2000) / 2000 = 1.5
    assert figures.ratios(TOTALS)["roi"] == pytest.approx(1.5)


def test_roas_is_revenue_over_spend():
    assert figures.ratios(TOTALS)["roas"] == pytest.approx(2.5)


def test_cac_is_spend_per_conversion():
    assert figures.ratios(TOTALS)["cac"] == pytest.approx(20.0)


def test_ctr_is_clicks_over_impressions():
    assert figures.ratios(TOTALS)["ctr"] == pytest.approx(0.025)


def test_cvr_is_conversions_over_clicks():
    assert figures.ratios(TOTALS)["cvr"] == pytest.approx(0.04)


def test_cost_per_lead_is_spend_per_lead():
    assert figures.ratios(TOTALS)["cost_per_lead"] == pytest.approx(5.0)


def test_budget_used_is_spend_over_budget_as_a_fraction():
    assert figures.ratios(TOTALS, budget=Decimal("8000"))["budget_used_pct"] == pytest.approx(0.25)


def test_budget_used_is_none_without_budget():
    assert figures.ratios(TOTALS)["budget_used_pct"] is None


def test_every_ratio_is_none_when_all_denominators_are_zero():
    result = figures.ratios({}, budget=0)
    assert result == {
        "roi": None,
        "roas": None,
        "cac": None,
        "ctr": None,
        "cvr": None,
        "cost_per_lead": None,
        "budget_used_pct": None,
    }


def test_zero_spend_with_revenue_gives_none_roi_but_zero_cac():
    # spend 0 → ROI and ROAS undefined; CAC = 0 / 10 = 0
    result = figures.ratios({"spend": 0, "revenue": 100, "conversions": 10})
    assert (result["roi"], result["roas"], result["cac"]) == (None, None, 0.0)


def test_loss_gives_negative_roi():
    assert figures.ratios({"spend": 1000, "revenue": 250})["roi"] == pytest.approx(-0.75)


def test_funnel_rates_are_step_over_previous_step():
    steps = figures.funnel(TOTALS)
    assert [(s["step"], s["value"], s["rate"]) for s in steps] == [
        ("impressions", 100_000, None),
        ("clicks", 2_500, pytest.approx(0.025)),
        ("leads", 400, pytest.approx(0.16)),
        ("conversions", 100, pytest.approx(0.25)),
    ]


def test_funnel_with_zero_step_gives_none_rate():
    steps = figures.funnel({"impressions": 0, "clicks": 0})
    assert steps[1]["rate"] is None


@pytest.mark.django_db
def test_totals_annotations_sum_in_sql(requester):
    # Given two channel-days
    campaign = campaign_make(owner=requester)
    metric_make(campaign=campaign, date=dt.date(2026, 6, 1), spend=Decimal("100.50"), clicks=10, revenue=300)
    metric_make(
        campaign=campaign, date=dt.date(2026, 6, 2), channel="douyin", spend=Decimal("99.50"), clicks=5
    )
    # When summed with the shared annotations
    totals = DailyMetric.objects.filter(campaign=campaign).aggregate(**figures.totals_annotations())
    # Then the sums are exact
    assert (totals["spend"], totals["clicks"], totals["revenue"]) == (
        Decimal("200.00"),
        15,
        Decimal("300.00"),
    )


@pytest.mark.django_db
def test_totals_annotations_are_zero_without_rows(requester):
    campaign = campaign_make(owner=requester)
    totals = DailyMetric.objects.filter(campaign=campaign).aggregate(**figures.totals_annotations())
    assert totals == {
        "spend": 0,
        "revenue": 0,
        "impressions": 0,
        "clicks": 0,
        "leads": 0,
        "conversions": 0,
    }
