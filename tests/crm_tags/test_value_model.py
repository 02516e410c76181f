"""Customer value, computed (crm_tags.value): the BG/NBD and Gamma-Gamma fits reproduce the published
CDNOW figures, CLV matches lifetimes' documented output, and the SQL RFM scores agree with pandas' qcut.

data/cdnow_sample.txt is the public CDNOW sample (Fader & Hardie; as shipped by the lifetimes package,
datasets/CDNOW_sample.txt): one line per order, columns master id, customer id, date, CDs, dollar value."""

import datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_tags.value import (
    SEGMENT_GRID,
    SEGMENTS,
    BgNbdParams,
    GammaGammaParams,
    ValueModelError,
    bg_nbd_fit,
    bg_nbd_log_likelihood,
    customer_lifetime_value,
    expected_purchases,
    expected_spend,
    gamma_gamma_fit,
    p_alive,
    purchase_summary,
    rfm_scores,
    segment_of,
)
from tests.crm_tags.value_data import cdnow_orders

CALIBRATION_END = datetime.date(1997, 9, 30)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    orders = cdnow_orders()
    return purchase_summary(
        orders["customer"], orders["day"], orders["amount"], as_of=CALIBRATION_END, time_unit="weeks"
    )


@pytest.fixture(scope="module")
def cdnow_bg_nbd(cdnow):
    return bg_nbd_fit(cdnow["frequency"], cdnow["recency"], cdnow["age"])


@pytest.fixture(scope="module")
def cdnow_gamma_gamma(cdnow):
    return gamma_gamma_fit(cdnow["frequency"], cdnow["monetary"])


# --- the CDNOW summary -------------------------------------------------------------------------------


def test_cdnow_summary_is_the_published_calibration_data(cdnow):
    # 2,357 customers, 946 of whom bought again in the 39 weeks; the first customer is the paper's example
    assert len(cdnow) == 2357
    assert int((cdnow["frequency"] > 0).sum()) == 946
    first = cdnow.loc[1]
    assert first["frequency"] == 2
    assert round(first["recency"], 2) == 30.43
    assert round(first["age"], 2) == 38.86
    # the mean of the two repeat orders (29.73 and 14.96); the first order (29.33) is left out
    assert first["monetary"] == pytest.approx(22.345)


def test_summary_counts_orders_of_one_day_as_one_purchase_and_ignores_later_ones():
    summary = purchase_summary(
        ["a", "a", "a", "a", "b"],
        ["2024-01-01", "2024-01-08", "2024-01-08", "2024-02-01", "2024-01-15"],
        [10, 5, 7, 99, 3],
        as_of=datetime.date(2024, 1, 22),
        time_unit="days",
    )
    assert summary.loc["a"].tolist() == [1, 7, 21, 12]
    assert summary.loc["b"].tolist() == [0, 0, 7, 0]


# --- BG/NBD -------------------------------------------------------------------------------------------


def test_bg_nbd_fit_reproduces_fader_hardie_lee_2005(cdnow_bg_nbd):
    params = cdnow_bg_nbd.params
    assert (round(params.r, 3), round(params.alpha, 3), round(params.a, 3), round(params.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(cdnow_bg_nbd.log_likelihood, 1) == -9582.4
    assert cdnow_bg_nbd.customers == 2357


def test_log_likelihood_is_highest_at_the_fit(cdnow, cdnow_bg_nbd):
    args = (cdnow["frequency"], cdnow["recency"], cdnow["age"])
    best = bg_nbd_log_likelihood(cdnow_bg_nbd.params, *args)
    assert best == pytest.approx(cdnow_bg_nbd.log_likelihood)
    p = cdnow_bg_nbd.params
    assert bg_nbd_log_likelihood(BgNbdParams(p.r * 1.05, p.alpha, p.a, p.b), *args) < best
    assert bg_nbd_log_likelihood(BgNbdParams(p.r, p.alpha, p.a, p.b * 0.95), *args) < best


def test_expected_purchases_of_the_papers_example_customer(cdnow_bg_nbd):
    # x = 2, t_x = 30.43, T = 38.86: 1.226 purchases expected in the next 39 weeks
    expected = expected_purchases(cdnow_bg_nbd.params, 39, [2], [30.43], [38.86])
    assert round(float(expected[0]), 3) == 1.226


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_silence(cdnow_bg_nbd):
    alive = p_alive(cdnow_bg_nbd.params, [0, 2, 2], [0, 30.43, 5.0], [38.86, 38.86, 38.86])
    assert alive[0] == 1.0
    assert 0 < alive[2] < alive[1] < 1


def test_fit_recovers_the_parameters_of_simulated_customers():
    truth = BgNbdParams(r=0.5, alpha=8.0, a=0.7, b=2.5)
    x, t_x, T = _simulate_bg_nbd(truth, customers=30_000, seed=7)
    fitted = bg_nbd_fit(x, t_x, T).params
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=0.15), name


# --- Gamma-Gamma and CLV -----------------------------------------------------------------------------


def test_gamma_gamma_fit_reproduces_fader_hardie_2013(cdnow_gamma_gamma):
    params = cdnow_gamma_gamma.params
    assert (round(params.p, 2), round(params.q, 2), round(params.gamma, 2)) == (6.25, 3.74, 15.44)
    assert cdnow_gamma_gamma.customers == 946


def test_expected_spend_lies_between_the_population_mean_and_the_customers_own(cdnow_gamma_gamma):
    params = cdnow_gamma_gamma.params
    population = params.gamma * params.p / (params.q - 1)
    spend = expected_spend(params, [0, 1, 20], [0, 100.0, 100.0])
    assert spend[0] == pytest.approx(population)
    assert population < spend[1] < spend[2] < 100


def test_clv_matches_lifetimes_documented_figures(cdnow):
    # lifetimes' README fits both models on its cdnow_customers_summary_with_transactions.csv (this
    # summary with times rounded to 0.01 week and spend to the cent) and prints customer_lifetime_value
    # (time=12, discount_rate=0.01, its default freq "D", i.e. months of 30 of the data's units)
    rounded = cdnow.assign(
        recency=cdnow["recency"].round(2),
        age=cdnow["age"].round(2),
        monetary=np.floor(cdnow["monetary"] * 100 + 0.5 + 1e-9) / 100,
    )
    args = (rounded["frequency"], rounded["recency"], rounded["age"])
    bg = bg_nbd_fit(*args).params
    gg = gamma_gamma_fit(rounded["frequency"], rounded["monetary"]).params
    clv = customer_lifetime_value(bg, gg, *args, rounded["monetary"], time_unit="days", discount_rate=0.01)
    documented = {1: 140.096211, 2: 18.943467, 3: 38.180574, 6: 1003.868107, 7: 28.109683, 9: 167.418216}
    for customer, value in documented.items():
        assert clv[rounded.index.get_loc(customer)] == pytest.approx(value, rel=1e-5), customer


def test_undiscounted_clv_is_expected_spend_times_expected_purchases(cdnow_bg_nbd, cdnow_gamma_gamma):
    x, t_x, T, m = [0, 2, 7], [0, 30.43, 20.0], [38.86, 38.86, 30.0], [0, 22.35, 40.0]
    clv = customer_lifetime_value(
        cdnow_bg_nbd.params, cdnow_gamma_gamma.params, x, t_x, T, m, time_unit="weeks", discount_rate=0
    )
    year = expected_purchases(cdnow_bg_nbd.params, 12 * 4.345, x, t_x, T)
    assert clv == pytest.approx(year * expected_spend(cdnow_gamma_gamma.params, x, m))
    discounted = customer_lifetime_value(
        cdnow_bg_nbd.params, cdnow_gamma_gamma.params, x, t_x, T, m, time_unit="weeks", discount_rate=0.01
    )
    assert np.all(discounted < clv)


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1, 2], [1.0], [3.0, 3.0]), "one value per customer"),
        (([-1], [0.0], [3.0]), "frequency must be a whole number"),
        (([1.5], [1.0], [3.0]), "frequency must be a whole number"),
        (([1], [4.0], [3.0]), "recency must be between 0 and the customer's age"),
        (([1], [0.0], [3.0]), "recency must be greater than 0"),
        (([1], [float("nan")], [3.0]), "recency must be finite"),
        (([1], ["soon"], [3.0]), "recency must be numbers"),
        (([0, 0], [0.0, 0.0], [3.0, 4.0]), "at least one customer with a repeat purchase"),
    ],
)
def test_bg_nbd_fit_rejects_bad_input_naming_it(args, message):
    with pytest.raises(ValueModelError, match=message):
        bg_nbd_fit(*args)


def test_gamma_gamma_rejects_bad_input_naming_it():
    with pytest.raises(ValueModelError, match="monetary value must not be negative"):
        gamma_gamma_fit([1, 2], [10.0, -1.0])
    with pytest.raises(ValueModelError, match="repeat purchase with a value"):
        gamma_gamma_fit([0, 3], [0.0, 0.0])
    with pytest.raises(ValueModelError, match="needs q > 1"):
        expected_spend(GammaGammaParams(p=1.0, q=0.5, gamma=1.0), [1], [10.0])


def test_predictions_reject_bad_horizon_and_time_unit():
    params = BgNbdParams(r=0.2, alpha=4.0, a=0.8, b=2.4)
    with pytest.raises(ValueModelError, match="horizon must be a number of time units"):
        expected_purchases(params, -1, [1], [1.0], [2.0])
    with pytest.raises(ValueModelError, match="time unit must be one of weeks, days, not 'months'"):
        customer_lifetime_value(
            params, GammaGammaParams(6, 4, 15), [1], [1.0], [2.0], [10.0], time_unit="months"
        )
    with pytest.raises(ValueModelError, match="discount rate must be a monthly rate"):
        customer_lifetime_value(
            params, GammaGammaParams(6, 4, 15), [1], [1.0], [2.0], [10.0], time_unit="weeks", discount_rate=-1
        )
    with pytest.raises(ValueModelError, match="months must be a whole number"):
        customer_lifetime_value(
            params, GammaGammaParams(6, 4, 15), [1], [1.0], [2.0], [10.0], time_unit="weeks", months=0
        )
    with pytest.raises(ValueModelError, match="as_of must be dates"):
        purchase_summary([1], ["2024-01-01"], [1], as_of="yesterday", time_unit="days")


# --- RFM ----------------------------------------------------------------------------------------------


def test_segment_grid_names_the_usual_segments_and_covers_every_score_pair():
    used = {segment_of(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert used == set(SEGMENTS)
    assert len(SEGMENTS) == 11
    assert segment_of(5, 5) == "champions"
    assert segment_of(1, 1) == "lost"
    assert segment_of(1, 5) == "cannot_lose_them"
    assert sorted(SEGMENT_GRID) == [1, 2, 3, 4, 5]


@pytest.fixture
def rfm_base(db):
    """A temporary table of (customer_id, recency, frequency, monetary) and a function filling it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE rfm_base (customer_id int PRIMARY KEY, recency int, frequency int,"
            " monetary numeric(14, 2), spend float8)"
        )

    def _fill(rows: list[tuple]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE rfm_base")
            cursor.executemany(
                "INSERT INTO rfm_base (customer_id, recency, frequency, monetary) VALUES (%s, %s, %s, %s)",
                rows,
            )
            cursor.execute("UPDATE rfm_base SET spend = monetary")

    yield _fill
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE rfm_base")


def _scored(monetary: str = "monetary") -> dict[int, tuple]:
    rows = rfm_scores(f"SELECT customer_id, recency, frequency, {monetary} AS monetary FROM rfm_base")
    return {row[0]: row[1:] for row in rows}


def _qcut_labels(values: pd.Series) -> pd.Series:
    """pandas' quintile label 0-4 (a base with a single value, which qcut leaves unlabelled, is all 0)."""
    present = values.dropna().astype(float)
    if present.nunique() <= 1:
        return pd.Series(0, index=present.index).reindex(values.index)
    return pd.qcut(present, 5, labels=False, duplicates="drop").reindex(values.index)


def _reference(rows: list[tuple]) -> dict[int, tuple]:
    frame = pd.DataFrame(rows, columns=["customer_id", "recency", "frequency", "monetary"]).set_index(
        "customer_id"
    )
    r = 5 - _qcut_labels(frame["recency"])
    f = 1 + _qcut_labels(frame["frequency"])
    m = 1 + _qcut_labels(frame["monetary"])
    return {
        customer: (
            int(r[customer]),
            int(f[customer]),
            int(m[customer]),
            segment_of(int(r[customer]), int(f[customer])),
        )
        for customer in frame.index
    }


def test_rfm_scores_a_tied_base_as_pandas_does(rfm_base):
    # given frequencies where one value fills four of the six places
    rows = [(i, 10 * i, f, Decimal(i)) for i, f in enumerate([1, 1, 1, 1, 2, 10], start=1)]
    rfm_base(rows)
    scored = _scored()
    # then ties share a score, and pandas' edge just above 1 at the 60 % position (its fraction is
    # 0.6000000000000002) puts 2 and 10 in different quintiles
    assert [scored[i][1] for i in range(1, 7)] == [1, 1, 1, 1, 2, 3]
    assert [scored[i][0] for i in range(1, 7)] == [5, 5, 4, 3, 2, 1]
    assert scored[1][3] == "new_customers"
    assert scored == _reference(rows)


def test_rfm_leaves_a_customer_without_a_value_unscored(rfm_base):
    rfm_base([(1, None, 1, Decimal("5")), (2, 3, 2, Decimal("9")), (3, 7, 1, Decimal("1"))])
    scored = _scored()
    assert scored[1][0] is None and scored[1][3] is None
    assert scored[2] == (5, 3, 5, "potential_loyalists")


values = st.one_of(st.integers(0, 4), st.integers(0, 3000))


@pytest.mark.django_db
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=st.lists(
        st.tuples(values, st.integers(1, 6), st.decimals(min_value=0, max_value=99999, places=2)),
        min_size=1,
        max_size=80,
    )
)
def test_rfm_scores_in_sql_agree_with_pandas_qcut(rfm_base, base):
    # given a random base, with many ties (recency and frequency drawn from small ranges)
    rows = [(i, r, f, m) for i, (r, f, m) in enumerate(base, start=1)]
    rfm_base(rows)
    # then the scores and segments computed in Postgres are pandas' qcut quintiles, customer by customer
    assert _scored() == _reference(rows)


@pytest.mark.django_db
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=st.lists(
        st.tuples(values, st.integers(1, 6), st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)),
        min_size=1,
        max_size=60,
    )
)
def test_rfm_scores_of_arbitrary_doubles_agree_with_pandas_qcut(rfm_base, base):
    # given a double precision column (values as close as one unit in the last place)
    rows = [(i, r, f, m) for i, (r, f, m) in enumerate(base, start=1)]
    rfm_base([(i, r, f, None) for i, r, f, _ in rows])
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE rfm_base SET spend = %s WHERE customer_id = %s", [(m, i) for i, _, _, m in rows]
        )
    # then the edges, computed in SQL as pandas computes them, score every value as pandas does
    assert _scored("spend") == _reference(rows)


# --- helpers -------------------------------------------------------------------------------------------


def _simulate_bg_nbd(params: BgNbdParams, *, customers: int, seed: int) -> tuple[np.ndarray, ...]:
    """Customers drawn from the BG/NBD process, with ages spread over 20 to 60 time units."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(20, 60, customers)
    rate = rng.gamma(params.r, 1 / params.alpha, customers)
    dropout = rng.beta(params.a, params.b, customers)
    # purchases made while alive: the customer drops out after the j-th with probability p
    alive_for = rng.geometric(dropout)
    arrivals = rng.poisson(rate * T)
    x = np.minimum(alive_for, arrivals)
    # given n arrivals in (0, T], the x-th is T times the x-th of n uniform order statistics
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)), 0.0)
    return x, t_x, T
