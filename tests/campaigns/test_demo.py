"""Demo data: seeded in one go, and seeding again changes nothing."""

import io

import pytest

from accounts import demo as accounts_demo
from campaigns import demo
from campaigns.models import Campaign, DailyMetric, Touchpoint

pytestmark = pytest.mark.django_db


def test_seed_is_idempotent():
    accounts_demo.seed(io.StringIO(), small=True)
    demo.seed(io.StringIO(), small=True)
    counts = (Campaign.objects.count(), DailyMetric.objects.count(), Touchpoint.objects.count())
    demo.seed(io.StringIO(), small=True)
    assert counts == (Campaign.objects.count(), DailyMetric.objects.count(), Touchpoint.objects.count())
    assert set(Campaign.objects.values_list("code", flat=True)) >= {"618-promo", "d11-warmup"}
    assert DailyMetric.objects.filter(campaign__code="618-promo").values("channel").distinct().count() >= 3
