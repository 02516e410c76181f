"""The z-test against scipy on the same numbers; winners only when significant with enough sample."""

import math

import pytest
from scipy import stats

from campaigns.abtest import VariantCounts, evaluate, normal_quantile, sample_size_per_variant, z_test

A = VariantCounts("A", 5000, 500)  # 10 %
B = VariantCounts("B", 5000, 600)  # 12 %


def scipy_p_value(a: VariantCounts, b: VariantCounts) -> float:
    """The two-proportion z-test's p-value is the chi-square test's without continuity correction."""
    table = [[a.conversions, a.exposures - a.conversions], [b.conversions, b.exposures - b.conversions]]
    return stats.chi2_contingency(table, correction=False)[1]


@pytest.mark.parametrize(
    "a,b",
    [
        (A, B),
        (VariantCounts("A", 1200, 36), VariantCounts("B", 1300, 52)),
        (VariantCounts("A", 800, 100), VariantCounts("B", 900, 101)),
    ],
)
def test_p_value_matches_scipy(a, b):
    assert z_test(a, b)["p_value"] == pytest.approx(scipy_p_value(a, b), rel=1e-9)


def test_z_matches_scipy_normal():
    result = z_test(A, B)
    assert 2 * stats.norm.sf(abs(result["z"])) == pytest.approx(result["p_value"], rel=1e-12)


def test_lift_and_its_confidence_interval_by_hand():
    # The intervals are score intervals (tests/campaigns/test_abtest_properties.py checks them against
    # statsmodels); with 5,000 exposures a side they are within 0.1 % of the Wald interval of the
    # difference and of the log-ratio (delta method) interval of the ratio.
    result = z_test(A, B)
    se = math.sqrt(0.1 * 0.9 / 5000 + 0.12 * 0.88 / 5000)
    z95 = stats.norm.ppf(0.975)
    assert result["absolute_lift"] == pytest.approx(0.02)
    assert result["absolute_lift_ci"] == pytest.approx([0.02 - z95 * se, 0.02 + z95 * se], rel=1e-3)
    assert result["lift"] == pytest.approx(0.2)
    se_log = math.sqrt(0.9 / 500 + 0.88 / 600)
    katz = [1.2 * math.exp(-z95 * se_log) - 1, 1.2 * math.exp(z95 * se_log) - 1]
    assert result["lift_ci"] == pytest.approx(katz, rel=2e-3)


def test_normal_quantile_matches_scipy():
    assert normal_quantile(0.975) == pytest.approx(stats.norm.ppf(0.975), abs=1e-9)


def test_significant_with_enough_sample_names_the_winner():
    result = evaluate([A, B], min_sample=1000)
    assert (result["status"], result["winner"]) == ("winner", "B")


def test_significant_but_below_min_sample_has_no_winner():
    result = evaluate([A, B], min_sample=6000)
    assert result["winner"] is None
    assert result["status"] == "not_significant"
    assert result["more_exposures_needed"] == 2000  # 1,000 more on each variant


def test_not_significant_reports_exposures_needed_for_observed_effect():
    a, b = VariantCounts("A", 1000, 100), VariantCounts("B", 1000, 110)
    result = evaluate([a, b])
    needed = sample_size_per_variant(0.10, 0.11)
    assert result["winner"] is None
    assert result["p_value"] > 0.05
    assert result["more_exposures_needed"] == 2 * (needed - 1000)


def test_sample_size_formula_by_hand():
    # n = (1.96 * sqrt(2 * .105 * .895) + 0.8416 * sqrt(.1 * .9 + .11 * .89))^2 / .01^2 ≈ 14,749
    assert sample_size_per_variant(0.10, 0.11) == pytest.approx(14749, abs=2)


def test_no_effect_gives_no_estimate():
    result = evaluate([VariantCounts("A", 2000, 100), VariantCounts("B", 2000, 100)])
    assert (result["winner"], result["more_exposures_needed"]) == (None, None)


def test_control_wins_when_challenger_is_significantly_worse():
    assert evaluate([B, A])["winner"] == "B"


def test_no_exposures_is_insufficient_data():
    result = evaluate([VariantCounts("A", 0, 0), VariantCounts("B", 0, 0)])
    assert (result["status"], result["p_value"]) == ("insufficient_data", None)
