"""Property tests over random tables: the A/B statistics against independent implementations.

scipy: Fisher's exact test, the chi-square omnibus test and the z-test's p-value (the chi-square test of
the 2×2 table without continuity correction). statsmodels (a dev dependency, so these never skip):
proportions_ztest, the score intervals of the difference and of the ratio, and the power of the
two-proportion z-test.
"""

import math

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from campaigns.abtest import (
    VariantCounts,
    compare,
    diff_interval,
    evaluate,
    expected_counts_small,
    minimum_detectable_effect,
    power_two_proportions,
    ratio_interval,
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Z_95 = stats.norm.isf(0.025)


@st.composite
def variant(draw, max_exposures: int = 5000) -> VariantCounts:
    n = draw(st.integers(min_value=1, max_value=max_exposures))
    return VariantCounts(draw(st.text("abcdef", min_size=1, max_size=4)), n, draw(st.integers(0, n)))


@st.composite
def large_pair(draw) -> tuple[VariantCounts, VariantCounts]:
    """Two variants whose 2×2 table expects at least 5 in every cell (the z-test's domain)."""
    a, b = draw(variant(20000)), draw(variant(20000))
    assume(not expected_counts_small(a, b))
    return a, b


def table(a: VariantCounts, b: VariantCounts) -> list[list[int]]:
    return [[b.conversions, b.exposures - b.conversions], [a.conversions, a.exposures - a.conversions]]


def far_from(p: float, level: float) -> bool:
    """Away from the level, where rounding could put an interval's edge on either side of 0."""
    return abs(p - level) > 1e-6 * level


# p-values --------------------------------------------------------------------------------------


@PROPERTY
@given(large_pair())
def test_z_p_value_is_the_uncorrected_chi_square_test(pair):
    a, b = pair
    c = compare(a, b, test="z")
    assume(c["p_value"] is not None)
    assert c["p_value"] == pytest.approx(
        stats.chi2_contingency(table(a, b), correction=False).pvalue, rel=1e-7, abs=1e-300
    )


@PROPERTY
@given(large_pair())
def test_z_test_matches_statsmodels_proportions_ztest(pair):
    from statsmodels.stats.proportion import proportions_ztest

    a, b = pair
    c = compare(a, b, test="z")
    assume(c["z"] is not None)
    z, p = proportions_ztest([b.conversions, a.conversions], [b.exposures, a.exposures])
    assert c["z"] == pytest.approx(z, rel=1e-9)
    assert c["p_value"] == pytest.approx(p, rel=1e-7, abs=1e-300)


@PROPERTY
@given(variant(60), variant(60))
def test_fisher_p_value_is_scipys(a, b):
    c = compare(a, b, test="fisher")
    assert c["p_value"] == pytest.approx(stats.fisher_exact(table(a, b)).pvalue, rel=1e-10)


@PROPERTY
@given(variant(200), variant(200))
def test_fisher_is_chosen_exactly_when_an_expected_cell_is_below_5(a, b):
    n = a.exposures + b.exposures
    converted = a.conversions + b.conversions
    expected = [e * col / n for e in (a.exposures, b.exposures) for col in (converted, n - converted)]
    result = evaluate([a, VariantCounts(b.name + "x", b.exposures, b.conversions)], min_sample=1)
    assert result["test"] == ("fisher" if min(expected) < 5 else "z") or result["test"] is None


@PROPERTY
@given(st.lists(variant(3000), min_size=3, max_size=6))
def test_omnibus_is_scipys_chi_square(vs):
    vs = [VariantCounts(f"v{i}", v.exposures, v.conversions) for i, v in enumerate(vs)]
    rows = [[v.conversions, v.exposures - v.conversions] for v in vs]
    assume(all(sum(col) for col in zip(*rows, strict=True)))
    expected = stats.chi2_contingency(rows, correction=False).pvalue
    assert evaluate(vs, 1)["omnibus_p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-300)


@PROPERTY
@given(st.lists(variant(3000), min_size=2, max_size=6))
def test_adjusted_p_values_are_bonferroni(vs):
    vs = [VariantCounts(f"v{i}", v.exposures, v.conversions) for i, v in enumerate(vs)]
    result = evaluate(vs, 1)
    k = len(vs) - 1
    for c in result["comparisons"]:
        if c["p_value"] is not None:
            assert c["p_adjusted"] == pytest.approx(min(1.0, k * c["p_value"]))
            assert c["significant"] == (c["p_adjusted"] < 0.05)


# Intervals ---------------------------------------------------------------------------------------


def statsmodels_interval(
    a: VariantCounts, b: VariantCounts, compare_: str, alpha: float
) -> tuple[float, float]:
    from statsmodels.stats.proportion import confint_proportions_2indep

    try:
        low, high = confint_proportions_2indep(
            b.conversions,
            b.exposures,
            a.conversions,
            a.exposures,
            method="score",
            compare=compare_,
            alpha=alpha,
            correction=False,
        )
    except (ValueError, ZeroDivisionError, FloatingPointError):
        assume(False)  # statsmodels' own root search fails on some zero cells
    assume(math.isfinite(low) and math.isfinite(high))
    return float(low), float(high)


def test_difference_interval_is_near_statsmodels_score_interval():
    """statsmodels' score interval of the difference (0.15) takes the restricted estimate from a cubic whose
    delta² term has the control's conversions where Farrington & Manning have its exposures
    (`tmp1 = (count0 * diff - nobs - 2 * count0) * diff + count`), so it is off the likelihood's
    maximum: 5/10 vs 5/10 gets the asymmetric [-0.3956, 0.4003]; at its bounds for 200/2000 vs 250/2000
    the score statistic is 1.9539, not 1.96. Close on a large table; every table is checked exactly
    against the brute-force reference below."""
    a, b = VariantCounts("a", 2000, 200), VariantCounts("b", 2000, 250)
    ours = diff_interval(b.conversions, b.exposures, a.conversions, a.exposures, Z_95)
    assert ours == pytest.approx(statsmodels_interval(a, b, "diff", 0.05), abs=1e-4)


def test_difference_interval_of_equal_variants_is_symmetric():
    assert diff_interval(5, 10, 5, 10, Z_95) == pytest.approx([-0.4014040, 0.4014040], abs=1e-6)


@PROPERTY
@given(variant(), variant())
@example(VariantCounts("a", 15, 4), VariantCounts("b", 16896, 1204))
def test_ratio_interval_is_statsmodels_score_interval(a, b):
    # statsmodels' closed form (Nam's cubic) picks a wrong root when a variant converts 100 %: there the
    # reference below decides.
    assume(0 < a.conversions < a.exposures and 0 < b.conversions < b.exposures)
    ours = ratio_interval(b.conversions, b.exposures, a.conversions, a.exposures, Z_95)
    low, high = statsmodels_interval(a, b, "ratio", 0.05)
    # (Nam's cubic is solved with numpy's polynomial roots: a few digits go when a rate is near 100 %.)
    assert ours[0] == pytest.approx(low, rel=1e-4, abs=1e-9)
    assert ours[1] == pytest.approx(high, rel=1e-4)


def reference_score(a: VariantCounts, b: VariantCounts, kind: str, value: float) -> float:
    """The score statistic with the restricted maximum-likelihood rates found by brute force (a bounded
    one-dimensional search of the log-likelihood), not by any closed form."""
    x1, n1, x0, n0 = b.conversions, b.exposures, a.conversions, a.exposures
    if kind == "diff":
        to_p1, low, high = (lambda p0: p0 + value), max(0.0, -value), min(1.0, 1 - value)
    else:
        to_p1, low, high = (lambda p0: p0 * value), 0.0, min(1.0, 1 / value)

    def nll(p0: float) -> float:
        p1, tiny = to_p1(p0), 1e-300
        return -(
            x1 * math.log(max(p1, tiny))
            + (n1 - x1) * math.log(max(1 - p1, tiny))
            + x0 * math.log(max(p0, tiny))
            + (n0 - x0) * math.log(max(1 - p0, tiny))
        )

    p0 = optimize.minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-13}).x
    p1 = to_p1(p0)
    if kind == "diff":
        return (x1 / n1 - x0 / n0 - value) / math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return (x1 / n1 - value * x0 / n0) / math.sqrt(p1 * (1 - p1) / n1 + value**2 * p0 * (1 - p0) / n0)


@PROPERTY
@given(variant(300), variant(300))
@example(VariantCounts("a", 2, 1), VariantCounts("b", 10, 2))
@example(VariantCounts("a", 10, 8), VariantCounts("b", 1, 1))
def test_interval_bounds_are_where_the_reference_score_statistic_reaches_z(a, b):
    assume(not (a.conversions == a.exposures and b.conversions == b.exposures))
    assume(not (a.conversions == 0 and b.conversions == 0))
    x1, n1, x0, n0 = b.conversions, b.exposures, a.conversions, a.exposures
    for bound in diff_interval(x1, n1, x0, n0, Z_95):
        if abs(bound) < 0.99:  # the bounded search loses digits right at the parameter's edge
            assert abs(reference_score(a, b, "diff", bound)) == pytest.approx(Z_95, abs=1e-3)
    for bound in ratio_interval(x1, n1, x0, n0, Z_95) or []:
        if bound is not None and bound > 0:
            assert abs(reference_score(a, b, "ratio", bound)) == pytest.approx(Z_95, abs=1e-3)


@PROPERTY
@given(variant(300), variant(300))
@example(VariantCounts("a", 10, 8), VariantCounts("b", 1, 1))
def test_ratio_interval_bounds_are_where_statsmodels_score_test_reaches_alpha(a, b):
    from statsmodels.stats.proportion import test_proportions_2indep

    assume(a.conversions > 0 and not (a.conversions == a.exposures and b.conversions == b.exposures))
    for bound in ratio_interval(b.conversions, b.exposures, a.conversions, a.exposures, Z_95):
        if bound is None or bound == 0:
            continue
        result = test_proportions_2indep(
            b.conversions,
            b.exposures,
            a.conversions,
            a.exposures,
            value=bound,
            method="score",
            compare="ratio",
            correction=False,
        )
        assert result.pvalue == pytest.approx(0.05, rel=1e-5)


@PROPERTY
@given(variant(), variant(), st.sampled_from(["z", "fisher", "msprt"]), st.integers(1, 4))
@example(VariantCounts("a", 10, 1), VariantCounts("b", 10, 5), "fisher", 1)
@example(VariantCounts("a", 6, 0), VariantCounts("b", 6, 4), "fisher", 1)
def test_intervals_exclude_zero_exactly_when_significant(a, b, test, k):
    c = compare(a, b, test=test, k=k, tau=0.02)
    assume(c["p_value"] is not None and far_from(c["p_value"], 0.05 / k))
    low, high = c["lift_ci"]
    assert low <= c["lift"] <= high
    assert (low > 0 or high < 0) == c["significant"]
    if c["relative_lift_ci"] is not None:
        rlow, rhigh = c["relative_lift_ci"]
        assert -1 <= rlow <= c["relative_lift"]
        assert rhigh is None or c["relative_lift"] <= rhigh
        assert (rlow > 0 or (rhigh is not None and rhigh < 0)) == c["significant"]


@PROPERTY
@given(large_pair())
def test_ratio_interval_is_close_to_the_log_ratio_interval_in_large_samples(pair):
    """Near the delta-method (Katz) log-ratio interval when every cell is large."""
    a, b = pair
    assume(min(a.conversions, b.conversions) >= 100)
    assume(min(a.exposures - a.conversions, b.exposures - b.conversions) >= 100)
    ratio = (b.conversions / b.exposures) / (a.conversions / a.exposures)
    se = math.sqrt(1 / b.conversions - 1 / b.exposures + 1 / a.conversions - 1 / a.exposures)
    ours = ratio_interval(b.conversions, b.exposures, a.conversions, a.exposures, Z_95)
    assert math.log(ours[0]) == pytest.approx(math.log(ratio) - Z_95 * se, abs=0.1 * Z_95 * se)
    assert math.log(ours[1]) == pytest.approx(math.log(ratio) + Z_95 * se, abs=0.1 * Z_95 * se)


# Winner ------------------------------------------------------------------------------------------


@PROPERTY
@given(st.lists(variant(3000), min_size=2, max_size=5))
def test_winner_is_the_best_significantly_better_challenger(vs):
    vs = [VariantCounts(f"v{i}", v.exposures, v.conversions) for i, v in enumerate(vs)]
    result = evaluate(vs, 1)
    control_rate = vs[0].rate
    better = [
        c
        for c, v in zip(result["comparisons"], vs[1:], strict=True)
        if c["significant"] and v.rate > control_rate
    ]
    if better:
        best = max(v.rate for v in vs[1:] if v.name in {c["variant"] for c in better})
        assert result["winner"] in {c["variant"] for c in better}
        assert next(v for v in vs if v.name == result["winner"]).rate == best
    elif result["winner"] is not None:
        # Only the control can win otherwise: significantly better than every challenger
        assert result["winner"] == "v0"
        assert all(c["significant"] and c["lift"] < 0 for c in result["comparisons"])


# Design ------------------------------------------------------------------------------------------


@PROPERTY
@given(
    st.floats(0.001, 0.9),
    st.floats(0.001, 0.09),
    st.integers(10, 10**6),
    st.integers(10, 10**6),
    st.sampled_from([0.05, 0.025, 0.0125]),
)
def test_power_matches_statsmodels(p0, diff, n0, n1, alpha):
    from statsmodels.stats.proportion import power_proportions_2indep

    assume(p0 + diff < 1)
    expected = power_proportions_2indep(diff, p0, n1, ratio=n0 / n1, alpha=alpha, return_results=False)
    assert power_two_proportions(p0, p0 + diff, n0, n1, alpha) == pytest.approx(float(expected), rel=1e-6)


@PROPERTY
@given(st.floats(0.005, 0.6), st.integers(50, 10**6), st.sampled_from([0.05, 0.025]))
def test_mde_is_the_effect_detected_with_80_percent_power(baseline, n, alpha):
    mde = minimum_detectable_effect(baseline, n, alpha)
    assume(mde is not None)
    assert power_two_proportions(baseline, baseline + mde, n, n, alpha) == pytest.approx(0.8, abs=1e-6)
    assert power_two_proportions(baseline, baseline + mde * 0.9, n, n, alpha) < 0.8
