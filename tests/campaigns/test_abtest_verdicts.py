"""Issue 17's A/B reproductions, each a test that fails on the old campaigns/abtest.py, plus the design
figures (omnibus, MDE, power) and the sequential test's validity under continuous monitoring."""

import math
import time

import numpy as np
import pytest
from scipy import stats

from campaigns.abtest import (
    VariantCounts,
    evaluate,
    minimum_detectable_effect,
    msprt_p,
    power_two_proportions,
    sample_size_per_variant,
)


def variants(*counts: tuple[int, int]) -> list[VariantCounts]:
    """(exposures, conversions) pairs named v0 (the control), v1, v2..."""
    return [VariantCounts(f"v{i}", n, x) for i, (n, x) in enumerate(counts)]


def comparison(result: dict, name: str) -> dict:
    return next(c for c in result["comparisons"] if c["variant"] == name)


# Wrong winner with 3+ variants ------------------------------------------------------------------


def test_three_variants_name_the_challenger_that_beats_the_control():
    # Given v1 beats the control (p = 0.0124 < 0.025) and v2 is worse
    result = evaluate(variants((2000, 200), (2000, 250), (2000, 120)), min_sample=1000)
    # Then v1 wins (the old code named the control, from v2's comparison)
    assert (result["status"], result["winner"], result["challenger"]) == ("winner", "v1", "v1")
    assert comparison(result, "v1")["p_value"] == pytest.approx(0.012351, abs=1e-6)
    assert comparison(result, "v1")["p_adjusted"] == pytest.approx(2 * 0.012351, abs=2e-6)


# Significant results reported as not significant -------------------------------------------------


def test_a_significant_challenger_is_not_hidden_by_a_noisier_one():
    # Given v1 is significant at α/2 while the small v2 is further from the control but not significant
    result = evaluate(variants((20000, 1000), (20000, 1100), (150, 12)), min_sample=100)
    assert (result["status"], result["winner"]) == ("winner", "v1")
    assert comparison(result, "v1")["significant"] and not comparison(result, "v2")["significant"]


def test_four_variants_find_the_significant_one():
    result = evaluate(variants((2327, 704), (34, 13), (51785, 17925), (1320, 369)), min_sample=1)
    assert (result["status"], result["winner"]) == ("winner", "v2")
    assert [c["significant"] for c in result["comparisons"]] == [False, True, False]


# Relative-lift interval --------------------------------------------------------------------------


def test_relative_lift_interval_never_goes_below_minus_100_percent():
    result = evaluate(variants((15, 4), (16896, 1204)), min_sample=1)
    low, high = result["lift_ci"]  # the old interval was [-1.572, 0.107]
    assert -1 <= low < high < 0
    assert result["comparisons"][0]["relative_lift_ci"] == [low, high]


def test_relative_lift_interval_includes_zero_when_not_significant():
    # Given (10, 1) vs (10, 5): not significant by any test (Fisher p = 0.14, z p = 0.051)
    result = evaluate(variants((10, 1), (10, 5)), min_sample=1)
    # Then neither interval excludes 0 (the old relative interval was [0.386, 7.614])
    assert result["lift_ci"][0] < 0 < result["lift_ci"][1]
    assert result["absolute_lift_ci"][0] < 0 < result["absolute_lift_ci"][1]
    assert result["status"] == "not_significant" and not result["comparisons"][0]["significant"]


def test_intervals_exclude_zero_when_significant():
    result = evaluate(variants((5000, 500), (5000, 600)), min_sample=1)
    assert result["lift_ci"][0] > 0 and result["absolute_lift_ci"][0] > 0
    c = result["comparisons"][0]
    assert c["significant"] and c["relative_lift_ci"][0] > 0 and c["lift_ci"][0] > 0


# Small samples ------------------------------------------------------------------------------------


def test_small_sample_uses_fisher_and_names_no_winner():
    # Given (6, 0) vs (6, 4): the z-test says p = 0.0143, Fisher's exact test 0.061
    result = evaluate(variants((6, 0), (6, 4)), min_sample=1)
    assert (result["status"], result["winner"]) == ("not_significant", None)
    assert result["p_value"] == pytest.approx(stats.fisher_exact([[4, 2], [0, 6]]).pvalue)
    assert (result["test"], result["comparisons"][0]["test"]) == ("fisher", "fisher")


def test_large_samples_use_the_z_test():
    result = evaluate(variants((5000, 500), (5000, 600)), min_sample=1)
    assert result["test"] == "z"


# Omnibus, MDE and power ---------------------------------------------------------------------------


def test_omnibus_p_value_is_the_chi_square_test_of_all_variants():
    result = evaluate(variants((2000, 200), (2000, 250), (2000, 120)), min_sample=1)
    table = [[200, 1800], [250, 1750], [120, 1880]]
    assert result["omnibus_p_value"] == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)


def test_two_variants_have_no_omnibus():
    assert evaluate(variants((5000, 500), (5000, 600)))["omnibus_p_value"] is None


def test_mde_is_known_before_the_test_runs():
    # Given a planned 5,000 per variant from a 10 % control rate, and no exposures yet
    result = evaluate(variants((0, 0), (0, 0)), min_sample=1000, planned_sample=5000, baseline_rate=0.1)
    assert result["status"] == "insufficient_data"
    # Then the MDE is the effect detected with 80 % power at α = 0.05 by 5,000 a side
    assert power_two_proportions(0.1, 0.1 + result["mde_absolute"], 5000, 5000) == pytest.approx(
        0.8, abs=1e-9
    )
    assert result["mde"] == pytest.approx(result["mde_absolute"] / 0.1)
    # (about 17 % relative: 10 % → 11.74 %), consistent with the sample-size formula
    assert sample_size_per_variant(0.1, 0.1 + result["mde_absolute"]) == pytest.approx(5000, abs=2)


def test_mde_splits_alpha_between_challengers():
    two = evaluate(variants((0, 0), (0, 0)), planned_sample=5000, baseline_rate=0.1)["mde_absolute"]
    three = evaluate(variants((0, 0), (0, 0), (0, 0)), planned_sample=5000, baseline_rate=0.1)["mde_absolute"]
    assert three == pytest.approx(minimum_detectable_effect(0.1, 5000, alpha=0.025)) and three > two


def test_power_reached_grows_to_80_percent_at_the_planned_sample():
    halfway = evaluate(variants((2500, 250), (2500, 260)), planned_sample=5000, baseline_rate=0.1)
    done = evaluate(variants((5000, 500), (5000, 520)), planned_sample=5000, baseline_rate=0.1)
    assert halfway["power"] < 0.8
    assert done["power"] == pytest.approx(0.8, abs=1e-6)


def test_without_a_baseline_the_observed_control_rate_sizes_the_mde():
    result = evaluate(variants((5000, 500), (5000, 520)), planned_sample=5000)
    assert result["mde_absolute"] == pytest.approx(minimum_detectable_effect(0.1, 5000))
    assert evaluate(variants((0, 0), (0, 0)))["mde"] is None


# Peeking: the sequential test ---------------------------------------------------------------------


def test_sequential_test_is_labelled_and_uses_the_always_valid_p_value():
    result = evaluate(
        variants((5000, 500), (5000, 600)), planned_sample=5000, baseline_rate=0.1, sequential="msprt"
    )
    c = result["comparisons"][0]
    assert (result["sequential"], result["test"], c["test"]) == ("msprt", "msprt", "msprt")
    tau = minimum_detectable_effect(0.1, 5000)
    assert c["p_value"] == pytest.approx(
        msprt_p(VariantCounts("a", 5000, 500), VariantCounts("b", 5000, 600), tau)
    )
    # More cautious than the fixed-sample z-test on the same counts
    assert c["p_value"] > evaluate(variants((5000, 500), (5000, 600)))["comparisons"][0]["p_value"]


def test_fixed_sample_test_has_no_sequential_label():
    assert evaluate(variants((5000, 500), (5000, 600)))["sequential"] is None


def test_checking_after_every_batch_keeps_false_winners_rare_with_msprt_only():
    """A/A tests (both at 10 %) checked after every 250 exposures a side up to 10,000: the fixed-sample
    z-test at 5 % finds a false difference at some check far more often than 5 %; the mSPRT stays under it."""
    rng = np.random.default_rng(17)
    runs, looks, batch, rate = 400, 40, 250, 0.10
    tau = minimum_detectable_effect(rate, looks * batch)
    control = rng.binomial(batch, rate, size=(runs, looks)).cumsum(axis=1)
    challenger = rng.binomial(batch, rate, size=(runs, looks)).cumsum(axis=1)
    z_false = msprt_false = 0
    for run in range(runs):
        z_hit = msprt_hit = False
        for look in range(looks):
            n = (look + 1) * batch
            a = VariantCounts("a", n, int(control[run, look]))
            b = VariantCounts("b", n, int(challenger[run, look]))
            pooled = (a.conversions + b.conversions) / (2 * n)
            z = (b.conversions - a.conversions) / n / math.sqrt(pooled * (1 - pooled) * 2 / n)
            z_hit = z_hit or 2 * stats.norm.sf(abs(z)) < 0.05
            msprt_hit = msprt_hit or (msprt_p(a, b, tau) or 1) < 0.05
        z_false += z_hit
        msprt_false += msprt_hit
    assert z_false / runs > 0.15
    assert msprt_false / runs <= 0.05


def test_fisher_on_billions_of_exposures_is_quick():
    # scipy.stats.fisher_exact takes seconds on this table; the result page must not
    start = time.perf_counter()
    result = evaluate(variants((3, 1), (2147483647, 2147483640)), min_sample=1)
    assert result["test"] == "fisher" and result["comparisons"][0]["p_value"] < 1e-15
    assert time.perf_counter() - start < 1
