"""Attribution credits add up exactly, and every model matches a brute-force reference.

The reference below is written from the definitions in docs/campaigns.md, independently of the SQL: it
walks each conversion's touchpoints in Python with exact fractions (linear, position based) or
50-digit decimals (time decay), then sums the shares per channel.
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.attribution import MODELS, apportion, attribute
from campaigns.models import Conversion, Touchpoint
from tests.campaigns.factories import campaign_make

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
CENT = Decimal("0.01")
MICRO = Decimal("0.000001")


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def load(campaign, touches, conversions) -> None:
    """touches: [(customer, hours, channel)] in id order; conversions: [(customer, hours, revenue)]."""
    Touchpoint.objects.bulk_create(
        Touchpoint(campaign=campaign, customer_external_id=c, occurred_at=at(h), channel=ch)
        for c, h, ch in touches
    )
    Conversion.objects.bulk_create(
        Conversion(campaign=campaign, customer_external_id=c, occurred_at=at(h), revenue=Decimal(r))
        for c, h, r in conversions
    )


def credits(result) -> dict[str, tuple[Decimal, Decimal]]:
    """Channel -> (conversions, revenue) as the decimals the API's numbers spell."""
    return {
        r["channel"]: (Decimal(str(r["conversions"])), Decimal(str(r["revenue"]))) for r in result["channels"]
    }


def sums(result) -> tuple[Decimal, Decimal]:
    values = credits(result).values()
    return sum((c for c, _ in values), Decimal(0)), sum((r for _, r in values), Decimal(0))


# --- the reference ------------------------------------------------------------------------------


def reference_weights(model: str, ages_hours: list[float], half_life_days: int) -> list[Fraction | Decimal]:
    """One conversion's weights for its touches, given in time order (oldest first) by age."""
    n = len(ages_hours)
    if model == "first_touch":
        return [Fraction(1)] + [Fraction(0)] * (n - 1)
    if model == "last_touch":
        return [Fraction(0)] * (n - 1) + [Fraction(1)]
    if model == "linear":
        return [Fraction(1, n)] * n
    if model == "position_based":
        if n == 1:
            return [Fraction(1)]
        if n == 2:
            return [Fraction(1, 2), Fraction(1, 2)]
        return [Fraction(2, 5)] + [Fraction(1, 5) / (n - 2)] * (n - 2) + [Fraction(2, 5)]
    with localcontext() as ctx:
        ctx.prec = 50
        raw = [Decimal("0.5") ** (Decimal(str(a)) / (Decimal(half_life_days) * 24)) for a in ages_hours]
        total = sum(raw, Decimal(0))
        return [w / total for w in raw]


def reference(model, touches, conversions, lookback_days, half_life_days):
    """Exact channel -> (conversions, revenue) shares, and the attributed totals."""
    shares: dict[str, list] = defaultdict(lambda: [Fraction(0), Fraction(0)])
    count, revenue = 0, Decimal(0)
    for customer, hours, amount in conversions:
        window = [
            (h, index, ch)
            for index, (c, h, ch) in enumerate(touches)
            if c == customer and hours - lookback_days * 24 <= h <= hours
        ]
        if not window:
            continue
        window.sort()
        count += 1
        revenue += Decimal(amount)
        weights = reference_weights(model, [hours - h for h, _, _ in window], half_life_days)
        for (_h, _i, channel), weight in zip(window, weights, strict=True):
            exact = Fraction(weight) if isinstance(weight, Decimal) else weight
            shares[channel][0] += exact
            shares[channel][1] += exact * Fraction(Decimal(amount))
    return {ch: tuple(v) for ch, v in shares.items() if v[0] > 0}, count, revenue


# --- reproductions (issue 17) -------------------------------------------------------------------


def test_linear_revenue_of_three_thirds_adds_up_to_the_cent(requester):
    # given one conversion of 100.00 touched once each by three channels
    campaign = campaign_make(owner=requester)
    load(campaign, [("c1", 1, "douyin"), ("c1", 2, "email"), ("c1", 3, "wechat")], [("c1", 4, "100.00")])
    # when credited linearly
    result = attribute(campaign=campaign, model="linear")
    # then the cents add up to 100.00 (33.33 * 3 = 99.99 before), the odd cent to one channel
    assert sums(result) == (Decimal(1), Decimal("100.00"))
    assert sorted(r for _c, r in credits(result).values()) == [
        Decimal("33.33"),
        Decimal("33.33"),
        Decimal("33.34"),
    ]


def test_linear_conversions_add_up_to_the_count(requester):
    # given two conversions, each touched by the same three channels
    campaign = campaign_make(owner=requester)
    touches = [(c, h, ch) for c in ("c1", "c2") for h, ch in ((1, "a"), (2, "b"), (3, "c"))]
    load(campaign, touches, [("c1", 5, "0"), ("c2", 5, "0")])
    # when credited linearly
    result = attribute(campaign=campaign, model="linear")
    # then the channels hold 2 conversions, not 3 * 0.666667 = 2.000001
    assert sums(result)[0] == Decimal(2)
    assert result["attributed"] == {"conversions": 2, "revenue": 0.0}


def test_seven_way_split_of_a_large_order_adds_up(requester):
    # given 24,123.24 split seven ways (each 3,446.177...; 3,446.18 * 7 = 24,123.26)
    campaign = campaign_make(owner=requester)
    load(campaign, [("c1", h, f"ch{h}") for h in range(7)], [("c1", 10, "24123.24")])
    result = attribute(campaign=campaign, model="linear")
    assert sums(result) == (Decimal(1), Decimal("24123.24"))


def test_page_precision_adds_up_too(requester):
    # given a conversion split three ways, shown with 2 decimals
    campaign = campaign_make(owner=requester)
    load(campaign, [("c1", 1, "a"), ("c1", 2, "b"), ("c1", 3, "c")], [("c1", 4, "1")])
    result = attribute(campaign=campaign, model="linear", conversion_places=2)
    assert sorted(c for c, _r in credits(result).values()) == [
        Decimal("0.33"),
        Decimal("0.33"),
        Decimal("0.34"),
    ]


# --- apportion ----------------------------------------------------------------------------------


def test_apportion_gives_the_missing_units_to_the_largest_remainders():
    shares = [Decimal("1.005"), Decimal("2.009"), Decimal("0.986")]  # total 4.00
    assert apportion(shares, Decimal("4.00"), CENT) == [Decimal("1.00"), Decimal("2.01"), Decimal("0.99")]


def test_apportion_of_nothing_is_nothing():
    assert apportion([], Decimal(0), CENT) == []


# --- the models' definitions --------------------------------------------------------------------


def single_conversion(requester, hours: list[float], model: str, **options):
    """One conversion at hour 1000; touch i on channel `t<i>` at the given hours."""
    campaign = campaign_make(owner=requester)
    load(campaign, [("c1", h, f"t{i}") for i, h in enumerate(hours)], [("c1", 1000, "100")])
    result = attribute(campaign=campaign, model=model, lookback_days=365, **options)
    return [credits(result)[f"t{i}"][0] for i in range(len(hours))]


@pytest.mark.parametrize(
    ("touches", "expected"),
    [
        (1, ["1"]),
        (2, ["0.5", "0.5"]),
        (3, ["0.4", "0.2", "0.4"]),
        (4, ["0.4", "0.1", "0.1", "0.4"]),
        (5, ["0.4", "0.066667", "0.066667", "0.066666", "0.4"]),
    ],
)
def test_position_based_weights_follow_hubspot(requester, touches, expected):
    # given one conversion with 1 to 5 touches on distinct channels, oldest first
    weights = single_conversion(requester, [float(i) for i in range(touches)], "position_based")
    # then first and last take 40 % (all of it for one touch, half each for two), the middle share 20 %
    assert weights == [Decimal(e) for e in expected]
    assert sum(weights) == 1


def test_time_decay_halves_the_weight_every_half_life(requester):
    # given touches 7 days and 0 days before the conversion, half-life 7 days
    weights = single_conversion(requester, [1000 - 7 * 24, 1000], "time_decay", half_life_days=7)
    # then the older one weighs half as much: 1/3 and 2/3
    assert weights == [Decimal("0.333333"), Decimal("0.666667")]


def test_time_decay_reports_its_half_life(requester):
    campaign = campaign_make(owner=requester)
    assert attribute(campaign=campaign, model="time_decay", half_life_days=3)["half_life_days"] == 3
    assert attribute(campaign=campaign, model="linear", half_life_days=3)["half_life_days"] is None


# --- properties ---------------------------------------------------------------------------------

CUSTOMERS = st.sampled_from(["c1", "c2", "c3"])
CHANNELS = st.sampled_from(["douyin", "email", "tmall", "wechat"])
HOURS = st.one_of(st.sampled_from([0, 24, 168, 169.5, 500]), st.integers(min_value=0, max_value=1200))
TOUCHES = st.lists(st.tuples(CUSTOMERS, HOURS, CHANNELS), max_size=14)
REVENUE = st.integers(min_value=0, max_value=10**9).map(lambda cents: str(Decimal(cents) / 100))
CONVERSIONS = st.lists(st.tuples(CUSTOMERS, HOURS, REVENUE), max_size=8)
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def blank(requester):
    """One campaign reused by every example; each example empties its journeys first."""
    campaign = campaign_make(owner=requester)

    def _blank():
        Touchpoint.objects.filter(campaign=campaign).delete()
        Conversion.objects.filter(campaign=campaign).delete()
        return campaign

    return _blank


@PROPERTY
@given(
    touches=TOUCHES,
    conversions=CONVERSIONS,
    model=st.sampled_from(MODELS),
    lookback=st.sampled_from([1, 7, 30]),
    half_life=st.sampled_from([1, 7, 30]),
    places=st.sampled_from([2, 6]),
)
def test_credits_add_up_and_stay_within_a_unit_of_the_reference(
    blank, touches, conversions, model, lookback, half_life, places
):
    # given random journeys
    campaign = blank()
    load(campaign, touches, conversions)
    # when credited by any model
    result = attribute(
        campaign=campaign,
        model=model,
        lookback_days=lookback,
        half_life_days=half_life,
        conversion_places=places,
    )
    exact, count, revenue = reference(model, touches, conversions, lookback, half_life)
    # then the channels add up exactly to the attributed totals
    assert result["attributed"] == {"conversions": count, "revenue": float(revenue)}
    assert sums(result) == (Decimal(count), revenue)
    # and each channel is within one unit (10^-places conversions, a cent) of its exact share
    got = credits(result)
    assert set(got) == set(exact)
    slack = Fraction(1, 10**12)  # the SQL's weights carry 30 decimals, time decay's power 16 digits
    for channel, (share, money) in exact.items():
        assert abs(Fraction(got[channel][0]) - share) <= Fraction(1, 10**places) + slack, channel
        assert abs(Fraction(got[channel][1]) - money) <= Fraction(CENT) + slack, channel


@PROPERTY
@given(
    hours=st.lists(st.integers(min_value=0, max_value=999), min_size=1, max_size=8, unique=True),
    model=st.sampled_from(MODELS),
    half_life=st.integers(min_value=1, max_value=365),
)
def test_one_conversion_is_credited_once(blank, hours, model, half_life):
    # given one conversion with touches on distinct channels
    campaign = blank()
    load(campaign, [("c1", h, f"t{i}") for i, h in enumerate(hours)], [("c1", 1000, "99.99")])
    # when credited by any model
    result = attribute(campaign=campaign, model=model, lookback_days=365, half_life_days=half_life)
    # then its credits add up to exactly one conversion and its whole revenue
    assert sums(result) == (Decimal(1), Decimal("99.99"))


@PROPERTY
@given(
    hours=st.lists(st.integers(min_value=0, max_value=999), min_size=2, max_size=8, unique=True),
    half_life=st.integers(min_value=1, max_value=365),
)
def test_time_decay_credits_a_later_touch_at_least_as_much(blank, hours, half_life):
    # given one conversion with touches on distinct channels at distinct times
    campaign = blank()
    load(campaign, [("c1", h, f"t{i}") for i, h in enumerate(hours)], [("c1", 1000, "100")])
    # when credited by time decay
    result = credits(
        attribute(campaign=campaign, model="time_decay", lookback_days=365, half_life_days=half_life)
    )
    # then credit never falls as the touch gets more recent
    by_time = [result[f"t{i}"] for _h, i in sorted((h, i) for i, h in enumerate(hours))]
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(by_time, by_time[1:], strict=False))
