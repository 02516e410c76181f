"""Customer figures: retention cohorts by signup month, tag sizes over time, entered/exited."""

import datetime as dt

import pytest

from analytics import customer_figures as cf
from analytics.filters import DashboardFilters
from tests.analytics.factories import at, customer_make, history_make, order_make, tag_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def cohorts_data():
    a = customer_make("a", signup_at=at(10, 4, month=9))
    customer_make("c", signup_at=at(15, 4, month=9))
    # 20:00 UTC on 30 Sep is 04:00 on 1 Oct in Shanghai: October's cohort
    b = customer_make("b", signup_at=at(30, 20, month=9))
    d = customer_make("d", signup_at=at(5, 4, month=10))
    order_make(a, at(20, 4, month=9))
    order_make(a, at(5, 4, month=11))
    order_make(b, at(2, 4, month=10))
    order_make(d, at(1, 4, month=11))
    order_make(d, at(2, 4, month=11))  # a second order in the same month counts the customer once


def test_retention_cohorts_by_signup_month(cohorts_data):
    filters = DashboardFilters(
        date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 11, 30), tz="Asia/Shanghai"
    )
    data = cf.cohorts(filters, staff=True)
    assert data["y"] == ["2026-09", "2026-10"]
    assert data["sizes"] == [2, 2]
    assert data["x"] == ["0", "1", "2"]
    assert data["z"] == [[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]


def test_cohorts_in_utc_put_the_edge_customer_in_september(cohorts_data):
    filters = DashboardFilters(date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 11, 30), tz="UTC")
    data = cf.cohorts(filters, staff=True)
    assert data["sizes"] == [3, 1]


@pytest.fixture
def vip():
    tag = tag_make("vip", members_count=2)
    one, two, three = customer_make("1"), customer_make("2"), customer_make("3")
    history_make(tag, three, "entered", at(20, 4, month=10))
    history_make(tag, one, "entered", at(2, 4))
    history_make(tag, two, "entered", at(3, 4))
    history_make(tag, one, "exited", at(5, 4))
    return tag


def test_tag_size_over_time_starts_from_earlier_history(vip, november):
    data = cf.tag_sizes(november, staff=True)
    sizes = dict(zip(data["x"], data["series"][0]["values"], strict=True))
    assert (sizes["2026-11-01"], sizes["2026-11-02"], sizes["2026-11-03"], sizes["2026-11-05"]) == (
        1,
        2,
        3,
        2,
    )
    assert sizes["2026-11-30"] == 2


def test_entered_and_exited_per_day(vip, november):
    data = cf.entered_exited(november, staff=True)
    entered = dict(zip(data["x"], data["series"][0]["values"], strict=True))
    exited = dict(zip(data["x"], data["series"][1]["values"], strict=True))
    assert sum(entered.values()) == 2
    assert exited["2026-11-05"] == -1


def test_kpis(vip, november):
    tiles = {tile["key"]: tile["value"] for tile in cf.kpis(november, staff=True)["tiles"]}
    assert tiles == {"customers": 3, "signups": 0, "tags": 1, "memberships": 2}
