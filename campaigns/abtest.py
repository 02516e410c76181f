"""A/B test statistics: every challenger against the control, with the test, the intervals and the
design figures a manager may ask about (docs/campaigns.md, "A/B tests", defines each one).

- The test: the pooled two-proportion z-test (`"z"`, the same p-value as a chi-square test without
  continuity correction); Fisher's exact test (`"fisher"`) for every comparison when any comparison's
  2×2 table has an expected cell count below 5; the mixture sequential probability ratio test
  (`"msprt"`, an always-valid p-value that stays valid however often the result is looked at) when the
  test was created as sequential.
- Several challengers: each comparison is judged at α / k (Bonferroni over k challengers);
  `p_adjusted` = min(1, k · p). Three or more variants also get a chi-square omnibus p-value.
- Intervals of the difference and of the ratio (relative lift) are score intervals (Miettinen–Nurminen
  for the difference, Koopman for the ratio), the inversion of the same pooled z statistic the z-test
  uses, so an interval excludes 0 exactly when the comparison is significant. Under the mSPRT their
  critical value is the always-valid boundary; under Fisher's test, where the z statistic would reach
  another verdict, it is z(α) · |z| / z(p): either way the interval agrees with the test used.
- Design: the minimum detectable effect (MDE) for the planned sample, known before the test runs when an
  expected control rate is entered, and the power the test has reached at its current exposures.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.8
Z_95 = 1.959963984540054  # two-sided 95 %
Z_POWER_80 = 0.8416212335729143
MIN_EXPECTED = 5  # below this expected cell count the normal approximation is not trusted
SEQUENTIAL_METHODS = ("msprt",)
TESTS = ("z", "fisher", "msprt")
# Ratio intervals are searched between these ratios: a lower bound at the bottom is 0, an upper bound at
# the top is unbounded (null).
RATIO_SEARCH = (1e-12, 1e12)


@dataclass(frozen=True)
class VariantCounts:
    name: str
    exposures: int
    conversions: int

    @property
    def rate(self) -> float | None:
        return self.conversions / self.exposures if self.exposures else None


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2))


def normal_quantile(p: float) -> float:
    """The standard normal quantile (inverse CDF), by bisection on erfc: exact enough for test design."""
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


# --- score statistics (challenger = 1, control = 0) -------------------------------------------------


def _score_diff(x1: int, n1: int, x0: int, n0: int, delta: float) -> float:
    """Miettinen–Nurminen score statistic (without the N/(N-1) factor) for H0: p1 - p0 = delta."""
    p1, p0 = x1 / n1, x0 / n0
    if delta == 0:
        prop0 = prop1 = (x1 + x0) / (n1 + n0)
    else:
        # The restricted maximum-likelihood estimate is a root of a cubic (Farrington & Manning 1990).
        theta = n0 / n1
        a = 1 + theta
        b = -(1 + theta + p1 + theta * p0 + delta * (theta + 2))
        c = delta * delta + delta * (2 * p1 + theta + 1) + p1 + theta * p0
        d = -p1 * delta * (1 + delta)
        v = b**3 / (27 * a**3) - b * c / (6 * a * a) + d / (2 * a)
        u = math.copysign(math.sqrt(max(b * b / (9 * a * a) - c / (3 * a), 0.0)), v)
        if u == 0:
            prop1 = -b / (3 * a)
        else:
            angle = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3
            prop1 = 2 * u * math.cos(angle) - b / (3 * a)
        prop1 = min(1.0, max(0.0, prop1))
        prop0 = min(1.0, max(0.0, prop1 - delta))
    var = prop1 * (1 - prop1) / n1 + prop0 * (1 - prop0) / n0
    numerator = p1 - p0 - delta
    if var <= 0:
        return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(var)


def _score_ratio(x1: int, n1: int, x0: int, n0: int, ratio: float) -> float:
    """Koopman's score statistic for H0: p1 / p0 = ratio."""
    n, c = n1 + n0, x1 + x0
    p1, p0 = x1 / n1, x0 / n0
    if ratio == 1:
        prop0 = prop1 = c / n
    else:
        a = n * ratio
        b = -(n1 * ratio + x1 + n0 + x0 * ratio)
        # The smaller root of a·p² + b·p + c, in the form that keeps its digits when a is tiny.
        root = -b + math.sqrt(max(b * b - 4 * a * c, 0.0))
        prop0 = 2 * c / root if root > 0 else 0.0
        prop1 = prop0 * ratio
    var = prop1 * (1 - prop1) / n1 + ratio**2 * prop0 * (1 - prop0) / n0
    numerator = p1 - ratio * p0
    if var <= 0:
        return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(var)


def _invert(
    stat: Callable[[float], float], estimate: float, low: float, high: float, z: float
) -> list[float]:
    """The values v in [low, high] around `estimate` where |stat(v)| <= z: [lower, upper].

    A side whose statistic never reaches z inside the range ends at the range's edge."""

    def excess(v: float) -> float:
        s = stat(v)
        return (s * s if math.isfinite(s) else math.inf) - z * z

    estimate = min(max(estimate, low), high)
    if excess(estimate) > 0:  # rounding at extreme counts: the estimate is all that can be said
        return [estimate, estimate]
    bounds = []
    for edge in (low, high):
        if estimate == edge or excess(edge) <= 0:
            bounds.append(edge)
        else:
            bounds.append(float(optimize.brentq(excess, edge, estimate, xtol=1e-14, rtol=1e-12, maxiter=200)))
    return bounds


def diff_interval(x1: int, n1: int, x0: int, n0: int, z: float) -> list[float]:
    """Score interval of p1 - p0 at critical value z (statsmodels' method="score", correction=False)."""
    eps = 1e-12
    lower, upper = _invert(lambda d: _score_diff(x1, n1, x0, n0, d), x1 / n1 - x0 / n0, -1 + eps, 1 - eps, z)
    # The search range's edges stand for -1 and 1 themselves.
    return [-1.0 if lower <= -1 + eps else lower, 1.0 if upper >= 1 - eps else upper]


def ratio_interval(x1: int, n1: int, x0: int, n0: int, z: float) -> list[float | None] | None:
    """Koopman's score interval of p1 / p0 at critical value z (None when the control has no conversion).

    Searched on the log scale between 1e-12 and 1e12: a lower bound at the bottom is 0, an upper bound at
    the top is None (unbounded)."""
    if x0 == 0 or (x0 == n0 and x1 == n1):  # no control conversion, or no variation to bound a ratio with
        return None
    lo, hi = math.log(RATIO_SEARCH[0]), math.log(RATIO_SEARCH[1])
    estimate = (x1 / n1) / (x0 / n0)
    log_estimate = math.log(estimate) if estimate > 0 else lo
    lower, upper = _invert(lambda r: _score_ratio(x1, n1, x0, n0, math.exp(r)), log_estimate, lo, hi, z)
    return [0.0 if lower <= lo else math.exp(lower), None if upper >= hi else math.exp(upper)]


# --- the tests ------------------------------------------------------------------------------------


def pooled_z(control: VariantCounts, challenger: VariantCounts) -> float | None:
    """The pooled two-proportion z statistic (challenger minus control); None without variation."""
    n0, n1 = control.exposures, challenger.exposures
    pooled = (control.conversions + challenger.conversions) / (n0 + n1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    if se == 0:
        return None
    return (challenger.conversions / n1 - control.conversions / n0) / se


def expected_counts_small(control: VariantCounts, challenger: VariantCounts) -> bool:
    """True when a cell of the 2×2 table (converted / not, per variant) expects fewer than 5."""
    n = control.exposures + challenger.exposures
    converted = control.conversions + challenger.conversions
    return any(
        exposures * column / n < MIN_EXPECTED
        for exposures in (control.exposures, challenger.exposures)
        for column in (converted, n - converted)
    )


def fisher_p(control: VariantCounts, challenger: VariantCounts) -> float:
    """Fisher's exact test, two-sided: the probability, given the margins, of the tables no more likely
    than the observed one (scipy.stats.fisher_exact's definition).

    Summed over the hypergeometric support directly: scipy's own routine takes seconds on a table with
    billions of exposures, and this support is short whenever an expected cell is below 5 (a cell's
    range is bounded by its smaller margin)."""
    total = control.exposures + challenger.exposures
    converted = control.conversions + challenger.conversions
    low = max(0, challenger.exposures - (total - converted))
    high = min(converted, challenger.exposures)
    support = np.arange(low, high + 1)
    log_pmf = stats.hypergeom.logpmf(support, total, converted, challenger.exposures)
    observed = log_pmf[challenger.conversions - low]
    # The same relative tolerance as scipy's, so that ties in probability count as ties.
    p = np.exp(log_pmf[log_pmf <= observed + math.log1p(1e-7)]).sum()
    return float(min(1.0, p))


def msprt_p(control: VariantCounts, challenger: VariantCounts, tau: float) -> float | None:
    """The always-valid p-value of the mixture SPRT (Johari, Pekelis & Walsh 2017) at the current counts.

    The difference of rates is approximately normal with the pooled variance V; against a normal mixture
    of effects N(0, tau²), the likelihood ratio is sqrt(V / (V + tau²)) · exp(d² tau² / (2 V (V + tau²))),
    and P(1 / LR ever falls below alpha | no difference) <= alpha, however often it is looked at."""
    n0, n1 = control.exposures, challenger.exposures
    pooled = (control.conversions + challenger.conversions) / (n0 + n1)
    variance = pooled * (1 - pooled) * (1 / n0 + 1 / n1)
    if variance == 0 or tau <= 0:
        return None
    diff = challenger.conversions / n1 - control.conversions / n0
    t2 = tau * tau
    log_lr = 0.5 * math.log(variance / (variance + t2)) + diff * diff * t2 / (2 * variance * (variance + t2))
    return min(1.0, math.exp(-log_lr)) if log_lr < 700 else 0.0


# --- design: power and minimum detectable effect --------------------------------------------------


def power_two_proportions(p0: float, p1: float, n0: int, n1: int, alpha: float = ALPHA) -> float | None:
    """Power of the two-sided pooled z-test at alpha to tell p1 from p0 with n0 and n1 exposures."""
    if n0 <= 0 or n1 <= 0 or not (0 <= p0 <= 1 and 0 <= p1 <= 1):
        return None
    z = stats.norm.isf(alpha / 2)
    pooled = (n0 * p0 + n1 * p1) / (n0 + n1)
    sd_null = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    sd_alt = math.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    diff = abs(p1 - p0)
    if sd_alt == 0:
        return 1.0 if diff > z * sd_null else 0.0
    return float(
        stats.norm.cdf((diff - z * sd_null) / sd_alt) + stats.norm.cdf((-diff - z * sd_null) / sd_alt)
    )


def minimum_detectable_effect(
    baseline: float, n_per_variant: int, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """The smallest absolute increase over `baseline` that the z-test at alpha detects with `power`
    when each variant has `n_per_variant` exposures; None when no rate up to 100 % is detectable."""
    if not 0 < baseline < 1 or n_per_variant <= 0:
        return None

    def shortfall(delta: float) -> float:
        return (
            power_two_proportions(baseline, baseline + delta, n_per_variant, n_per_variant, alpha) or 0.0
        ) - power

    top = 1 - baseline
    if shortfall(top) < 0:
        return None
    return float(optimize.brentq(shortfall, 1e-12, top, xtol=1e-12, rtol=1e-10, maxiter=200))


def sample_size_per_variant(p1: float, p2: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Exposures per variant needed to detect p1 vs p2 (two-sided test at alpha with the given power)."""
    if p1 == p2:
        return None
    z_a = normal_quantile(1 - alpha / 2)
    z_b = normal_quantile(power)
    p_bar = (p1 + p2) / 2
    numerator = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(numerator**2 / (p1 - p2) ** 2)


# --- one comparison -------------------------------------------------------------------------------


def _intervals(control: VariantCounts, challenger: VariantCounts, z_crit: float) -> dict[str, Any]:
    x0, n0, x1, n1 = control.conversions, control.exposures, challenger.conversions, challenger.exposures
    ratio = ratio_interval(x1, n1, x0, n0, z_crit)
    return {
        "lift_ci": diff_interval(x1, n1, x0, n0, z_crit),
        "relative_lift_ci": None if ratio is None else [None if b is None else b - 1 for b in ratio],
    }


def _critical_value(
    test: str, z_obs: float | None, p_value: float, level: float, variance: float, tau: float | None
) -> float:
    """The score intervals' critical value, so that they exclude 0 exactly when p_value < level.

    The score statistic at "no difference" is the pooled z. For the z-test that is z(level); for the
    mSPRT it is the always-valid boundary (the |z| at which 1 / LR = level); for Fisher's test it is
    z(level) when the z statistic reaches the same verdict, else z(level) · |z| / z(p), which moves the
    interval's edge to 0 exactly where Fisher's p-value crosses the level."""
    z_crit = float(stats.norm.isf(level / 2))
    if test == "msprt" and tau and variance > 0:
        t2 = tau * tau
        return math.sqrt(
            (variance + t2) / t2 * (2 * math.log(1 / level) + math.log((variance + t2) / variance))
        )
    if test != "fisher" or not z_obs or (abs(z_obs) > z_crit) == (p_value < level):
        return z_crit
    z_p = float(stats.norm.isf(p_value / 2)) if p_value > 0 else math.inf
    return z_crit * abs(z_obs) / z_p


def compare(
    control: VariantCounts,
    challenger: VariantCounts,
    *,
    test: str = "z",
    alpha: float = ALPHA,
    k: int = 1,
    tau: float | None = None,
) -> dict[str, Any]:
    """One challenger against the control with `test` at level alpha / k (Bonferroni over k challengers).

    `lift` is the absolute difference of rates, `relative_lift` the ratio minus one; each interval is at
    1 - alpha / k and excludes 0 exactly when `significant`. Quantities that cannot be computed (no
    exposures, no variation, a control without conversions for the ratio) are None."""
    out: dict[str, Any] = {
        "variant": challenger.name,
        "test": None,
        "z": None,
        "p_value": None,
        "p_adjusted": None,
        "lift": None,
        "lift_ci": None,
        "relative_lift": None,
        "relative_lift_ci": None,
        "significant": False,
        "absolute_lift": None,
        "absolute_lift_ci": None,
        "power": None,
    }
    n0, n1 = control.exposures, challenger.exposures
    if n0 == 0 or n1 == 0:
        return out
    p0, p1 = control.conversions / n0, challenger.conversions / n1
    out["lift"] = out["absolute_lift"] = p1 - p0
    if p0 > 0:
        out["relative_lift"] = p1 / p0 - 1
    z_obs = pooled_z(control, challenger)
    out["z"] = z_obs
    level = alpha / k
    if test == "msprt":
        p_value = msprt_p(control, challenger, tau or 0.0)
    elif test == "fisher":
        p_value = fisher_p(control, challenger)
    else:
        p_value = None if z_obs is None else normal_two_sided_p(z_obs)
    if p_value is None:
        # No variation at all (nobody or everybody converted): no test, and nothing to tell apart.
        return out
    out["test"] = test
    out["p_value"] = p_value
    out["p_adjusted"] = min(1.0, p_value * k)
    out["significant"] = out["p_adjusted"] < alpha
    pooled = (control.conversions + challenger.conversions) / (n0 + n1)
    variance = pooled * (1 - pooled) * (1 / n0 + 1 / n1)
    critical = _critical_value(test, z_obs, p_value, level, variance, tau)
    out.update(_intervals(control, challenger, critical))
    out["absolute_lift_ci"] = out["lift_ci"]
    return out


def z_test(control: VariantCounts, challenger: VariantCounts, alpha: float = ALPHA) -> dict[str, Any]:
    """The pooled z-test of challenger against control, in the result's top-level shape:
    `lift` is relative (ratio - 1), `absolute_lift` the difference, intervals at 1 - alpha."""
    c = compare(control, challenger, test="z", alpha=alpha)
    return {
        "z": c["z"],
        "p_value": c["p_value"],
        "absolute_lift": c["absolute_lift"],
        "absolute_lift_ci": c["absolute_lift_ci"],
        "lift": c["relative_lift"],
        "lift_ci": c["relative_lift_ci"],
    }


# --- the whole test -------------------------------------------------------------------------------


def choose_test(variants: list[VariantCounts], sequential: str | None = None) -> str:
    """`msprt` for a sequential test; else `fisher` when any comparison expects a cell below 5, else `z`."""
    if sequential:
        return sequential
    control = variants[0]
    for challenger in variants[1:]:
        if challenger.exposures and control.exposures and expected_counts_small(control, challenger):
            return "fisher"
    return "z"


def omnibus_p_value(variants: list[VariantCounts]) -> float | None:
    """Chi-square test that all (3+) variants share one rate; None with fewer or without variation."""
    rows = [[v.conversions, v.exposures - v.conversions] for v in variants if v.exposures]
    if len(rows) < 3 or not all(sum(col) for col in zip(*rows, strict=True)):
        return None
    return float(stats.chi2_contingency(rows, correction=False).pvalue)


def _design_baseline(baseline_rate: float | None, control: VariantCounts | None) -> float | None:
    if baseline_rate is not None:
        return baseline_rate
    rate = control.rate if control is not None else None
    return rate if rate is not None and 0 < rate < 1 else None


def evaluate(
    variants: list[VariantCounts],
    min_sample: int = 1000,
    *,
    planned_sample: int | None = None,
    baseline_rate: float | None = None,
    sequential: str | None = None,
) -> dict[str, Any]:
    """The test's result: rates, every challenger against the control, a winner only when significant.

    `status` is "winner", "not_significant" (with `more_exposures_needed` for the observed effect, None
    when no effect is observed yet) or "insufficient_data" (fewer than two variants with exposures). The
    top-level p_value, z, lift... are the comparison of the winner, or else of the best challenger (the
    highest rate); `lift` there is relative, as it always was."""
    k = max(len(variants) - 1, 1)
    alpha = ALPHA / k
    planned = planned_sample or min_sample
    control = variants[0] if variants else None
    baseline = _design_baseline(baseline_rate, control)
    mde_abs = minimum_detectable_effect(baseline, planned, alpha) if baseline is not None else None
    result: dict[str, Any] = {
        "variants": [
            {"name": v.name, "exposures": v.exposures, "conversions": v.conversions, "rate": v.rate}
            for v in variants
        ],
        "control": control.name if control else None,
        "challenger": None,
        "test": None,
        "sequential": sequential or None,
        "p_value": None,
        "z": None,
        "lift": None,
        "lift_ci": None,
        "absolute_lift": None,
        "absolute_lift_ci": None,
        "alpha": alpha,
        "family_alpha": ALPHA,
        "min_sample": min_sample,
        "planned_sample": planned,
        "baseline_rate": baseline_rate,
        "mde": mde_abs / baseline if mde_abs is not None and baseline else None,
        "mde_absolute": mde_abs,
        "power": None,
        "omnibus_p_value": None,
        "winner": None,
        "status": "insufficient_data",
        "more_exposures_needed": None,
        "comparisons": [],
    }
    if len(variants) < 2 or control is None or control.exposures == 0:
        return result
    challengers = variants[1:]
    test = choose_test(variants, sequential)
    # The mixture's spread is the effect the plan was sized for (fixed with the plan); an effect that the
    # plan cannot detect at all falls back to the largest possible increase.
    tau = (mde_abs or (1 - baseline if baseline is not None else None)) if test == "msprt" else None
    comparisons = [compare(control, c, test=test, alpha=ALPHA, k=k, tau=tau) for c in challengers]
    if mde_abs is not None and baseline is not None:
        for challenger, comparison in zip(challengers, comparisons, strict=True):
            comparison["power"] = power_two_proportions(
                baseline, baseline + mde_abs, control.exposures, challenger.exposures, alpha
            )
    result["comparisons"] = comparisons
    result["test"] = test if any(c["test"] for c in comparisons) else None
    result["omnibus_p_value"] = omnibus_p_value(variants)
    powers = [c["power"] for c in comparisons if c["power"] is not None]
    result["power"] = min(powers) if powers else None

    measured = [i for i, c in enumerate(challengers) if c.exposures]
    if not measured:
        return result
    control_rate = control.rate or 0.0
    better = [
        i for i in measured if comparisons[i]["significant"] and (challengers[i].rate or 0) > control_rate
    ]
    # The best challenger significantly better than the control; else the challenger with the best rate.
    if better:
        chosen_index = max(better, key=lambda i: (challengers[i].rate or 0, -comparisons[i]["p_value"]))
    else:
        chosen_index = max(measured, key=lambda i: (challengers[i].rate or 0, -i))
    chosen, comparison = challengers[chosen_index], comparisons[chosen_index]
    result["challenger"] = chosen.name
    result["p_value"] = comparison["p_value"]
    result["z"] = comparison["z"]
    result["lift"] = comparison["relative_lift"]
    result["lift_ci"] = comparison["relative_lift_ci"]
    result["absolute_lift"] = comparison["absolute_lift"]
    result["absolute_lift_ci"] = comparison["absolute_lift_ci"]

    enough = all(v.exposures >= min_sample for v in variants)
    # The control wins when it is significantly better than every challenger.
    control_wins = all(
        comparisons[i]["significant"] and (challengers[i].rate or 0) < control_rate
        for i in range(len(challengers))
    )
    significant = bool(better) or control_wins
    if significant and enough:
        result["status"] = "winner"
        result["winner"] = chosen.name if better else control.name
        return result
    result["status"] = "not_significant"
    if significant:
        # Significant but under the minimum sample: only the minimum sample is missing.
        result["more_exposures_needed"] = sum(max(0, min_sample - v.exposures) for v in variants)
        return result
    needed = sample_size_per_variant(control.rate or 0.0, chosen.rate or 0.0, alpha=alpha)
    if needed is not None:
        target = max(needed, min_sample)
        result["more_exposures_needed"] = sum(max(0, target - v.exposures) for v in (control, chosen)) + sum(
            max(0, min_sample - v.exposures) for v in challengers if v is not chosen
        )
    elif not enough:
        result["more_exposures_needed"] = sum(max(0, min_sample - v.exposures) for v in variants)
    return result
