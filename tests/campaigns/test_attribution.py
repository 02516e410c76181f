"""Attribution models on a small hand-worked journey set (lookback 30 days)."""

import datetime as dt
from decimal import Decimal

import pytest

from campaigns.attribution import UnknownModel, attribute
from campaigns.models import Conversion, Touchpoint
from tests.campaigns.factories import campaign_make

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


@pytest.fixture
def journeys(requester):
    """c1: wechat(d1) → douyin(d5) → email(d10), buys 300 on d12.
    c2: douyin(d1, 39 days before: outside the window) → wechat(d35), buys 100 on d40.
    c3: buys 50 with no touch; c4: touched only after buying 20 (unattributed both).
    """
    campaign = campaign_make(owner=requester)
    touches = [
        ("c1", 1, "wechat"),
        ("c1", 5, "douyin"),
        ("c1", 10, "email"),
        ("c2", 1, "douyin"),
        ("c2", 35, "wechat"),
        ("c4", 20, "wechat"),
    ]
    Touchpoint.objects.bulk_create(
        Touchpoint(campaign=campaign, customer_external_id=c, occurred_at=day(d), channel=ch)
        for c, d, ch in touches
    )
    conversions = [("c1", 12, "300"), ("c2", 40, "100"), ("c3", 3, "50"), ("c4", 15, "20")]
    Conversion.objects.bulk_create(
        Conversion(campaign=campaign, customer_external_id=c, occurred_at=day(d), revenue=Decimal(r))
        for c, d, r in conversions
    )
    return campaign


def as_map(result):
    return {row["channel"]: (row["conversions"], row["revenue"]) for row in result["channels"]}


def test_first_touch_credits_the_earliest_touch_in_the_window(journeys):
    assert as_map(attribute(campaign=journeys, model="first_touch")) == {"wechat": (2.0, 400.0)}


def test_last_touch_credits_the_latest_touch(journeys):
    assert as_map(attribute(campaign=journeys, model="last_touch")) == {
        "email": (1.0, 300.0),
        "wechat": (1.0, 100.0),
    }


def test_linear_splits_each_conversion_evenly(journeys):
    result = as_map(attribute(campaign=journeys, model="linear"))
    assert result["wechat"] == (pytest.approx(4 / 3, abs=1e-6), pytest.approx(200.0))
    assert result["douyin"] == (pytest.approx(1 / 3, abs=1e-6), pytest.approx(100.0))
    assert result["email"] == (pytest.approx(1 / 3, abs=1e-6), pytest.approx(100.0))


def test_conversions_without_touch_in_window_are_unattributed(journeys):
    assert attribute(campaign=journeys, model="linear")["unattributed"] == {"conversions": 2, "revenue": 70.0}


def test_longer_lookback_lets_the_old_touch_count(journeys):
    # With 60 days c2's first touch (douyin, 39 days earlier) is inside the window.
    assert as_map(attribute(campaign=journeys, model="first_touch", lookback_days=60)) == {
        "douyin": (1.0, 100.0),
        "wechat": (1.0, 300.0),
    }


def test_unknown_model_is_refused(journeys):
    with pytest.raises(UnknownModel):
        attribute(campaign=journeys, model="magic")
