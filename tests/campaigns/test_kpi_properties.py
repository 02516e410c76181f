"""Property test (issue 21): the summary API's `kpi` actuals and attainments over random daily metrics and
random targets, against an independent computation with pandas from the same rows."""

import datetime as dt
import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.kpi_targets import METRICS
from campaigns.models import DailyMetric
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CHANNELS = ("wechat", "douyin", "email")
money = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=10**7)
row = st.fixed_dictionaries(
    {
        "day": st.integers(min_value=0, max_value=20),
        "channel": st.sampled_from(CHANNELS),
        "spend": money,
        "revenue": money,
        "impressions": counts,
        "clicks": counts,
        "leads": counts,
        "conversions": counts,
    }
)
# a target of 0 for some metrics: attainment must then be null
target = st.one_of(
    st.just(0), st.integers(1, 10**6), st.floats(min_value=0.001, max_value=100, allow_nan=False)
)


def expected(rows: list[dict], targets: dict) -> dict[str, dict]:
    """Totals and ratios by pandas, then actual / target; inf or NaN (a zero denominator) means null."""
    frame = pd.DataFrame(rows, columns=["spend", "revenue", "impressions", "clicks", "leads", "conversions"])
    frame = frame.astype({"spend": float, "revenue": float}).fillna(0)
    t = frame.sum()

    def div(a: float, b: float) -> float | None:
        return None if b == 0 else a / b

    actual = {
        "spend": float(t["spend"]),
        "revenue": float(t["revenue"]),
        "impressions": float(t["impressions"]),
        "clicks": float(t["clicks"]),
        "leads": float(t["leads"]),
        "conversions": float(t["conversions"]),
        "roi": div(t["revenue"] - t["spend"], t["spend"]),
        "roas": div(t["revenue"], t["spend"]),
        "cac": div(t["spend"], t["conversions"]),
        "ctr": div(t["clicks"], t["impressions"]),
        "cvr": div(t["conversions"], t["clicks"]),
        "cost_per_lead": div(t["spend"], t["leads"]),
    }
    out = {}
    for metric, goal in targets.items():
        value = actual[metric]
        out[metric] = {
            "target": float(goal),
            "actual": value,
            "attainment": None if value is None or goal == 0 else value / float(goal),
        }
    return out


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@PROPERTY
@given(
    rows=st.lists(row, max_size=30, unique_by=lambda r: (r["day"], r["channel"])),
    targets=st.dictionaries(st.sampled_from(METRICS), target, max_size=len(METRICS)),
)
def test_kpi_in_the_summary_matches_pandas(campaign, requester, rows, targets):
    DailyMetric.objects.filter(campaign=campaign).delete()
    DailyMetric.objects.bulk_create(
        DailyMetric(
            campaign=campaign,
            date=dt.date(2026, 6, 1) + dt.timedelta(days=r["day"]),
            channel=r["channel"],
            spend=r["spend"],
            revenue=r["revenue"],
            impressions=r["impressions"],
            clicks=r["clicks"],
            leads=r["leads"],
            conversions=r["conversions"],
        )
        for r in rows
    )
    type(campaign).objects.filter(pk=campaign.pk).update(kpi_targets=targets)

    body = api_client_for(requester).get(f"/api/v1/campaigns/{campaign.code}/summary/").json()

    want = expected(rows, targets)
    got = {item["metric"]: item for item in body["kpi"]}
    assert [item["metric"] for item in body["kpi"]] == [m for m in METRICS if m in targets]  # figures' order
    for metric, values in want.items():
        assert set(got[metric]) == {"metric", "target", "actual", "attainment"}
        for key in ("target", "actual", "attainment"):
            assert close(got[metric][key], values[key]), (metric, key, got[metric], values)
