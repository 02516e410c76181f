"""A/B test statistics: a two-proportion z-test with a 95 % confidence interval of the lift.

The first variant is the control; every other variant is compared with it. With more than one
challenger the significance level is split between them (Bonferroni), so "winner" stays honest.
"""

import math
from dataclasses import dataclass
from typing import Any

ALPHA = 0.05
POWER = 0.8
Z_95 = 1.959963984540054  # two-sided 95 %
Z_POWER_80 = 0.8416212335729143


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


def z_test(control: VariantCounts, challenger: VariantCounts, alpha: float = ALPHA) -> dict[str, Any]:
    """Pooled two-proportion z-test of challenger against control, with the unpooled CI of the difference.

    Returns z, p_value, absolute lift (difference of rates) and its CI at 1 - alpha, relative lift
    (difference / control rate) and its CI (the absolute CI divided by the control rate). Any
    quantity that cannot be computed (no exposures, no conversions at all, control rate 0) is None.
    """
    n1, n2 = control.exposures, challenger.exposures
    out: dict[str, Any] = {
        "z": None,
        "p_value": None,
        "absolute_lift": None,
        "absolute_lift_ci": None,
        "lift": None,
        "lift_ci": None,
    }
    if n1 == 0 or n2 == 0:
        return out
    p1, p2 = control.conversions / n1, challenger.conversions / n2
    diff = p2 - p1
    out["absolute_lift"] = diff
    z_crit = normal_quantile(1 - alpha / 2)
    se_unpooled = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    out["absolute_lift_ci"] = [diff - z_crit * se_unpooled, diff + z_crit * se_unpooled]
    if p1 > 0:
        out["lift"] = diff / p1
        out["lift_ci"] = [bound / p1 for bound in out["absolute_lift_ci"]]
    pooled = (control.conversions + challenger.conversions) / (n1 + n2)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se_pooled == 0:
        return out
    z = diff / se_pooled
    out["z"] = z
    out["p_value"] = normal_two_sided_p(z)
    return out


def sample_size_per_variant(p1: float, p2: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Exposures per variant needed to detect p1 vs p2 (two-sided test at alpha with the given power)."""
    if p1 == p2:
        return None
    z_a = normal_quantile(1 - alpha / 2)
    z_b = normal_quantile(power)
    p_bar = (p1 + p2) / 2
    numerator = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(numerator**2 / (p1 - p2) ** 2)


def evaluate(variants: list[VariantCounts], min_sample: int = 1000) -> dict[str, Any]:
    """The test's result: rates, the best challenger against the control, a winner only when significant.

    `status` is "winner", "not_significant" (with `more_exposures_needed` for the observed effect,
    None when no effect is observed yet) or "insufficient_data" (fewer than two variants with exposures).
    """
    result: dict[str, Any] = {
        "variants": [
            {"name": v.name, "exposures": v.exposures, "conversions": v.conversions, "rate": v.rate}
            for v in variants
        ],
        "control": variants[0].name if variants else None,
        "challenger": None,
        "p_value": None,
        "z": None,
        "lift": None,
        "lift_ci": None,
        "absolute_lift": None,
        "absolute_lift_ci": None,
        "alpha": ALPHA,
        "min_sample": min_sample,
        "winner": None,
        "status": "insufficient_data",
        "more_exposures_needed": None,
        "comparisons": [],
    }
    if len(variants) < 2 or variants[0].exposures == 0:
        return result
    control, challengers = variants[0], variants[1:]
    alpha = ALPHA / len(challengers)
    result["alpha"] = alpha
    comparisons = []
    for challenger in challengers:
        comparisons.append({"variant": challenger.name, **z_test(control, challenger, alpha)})
    result["comparisons"] = comparisons
    # The challenger furthest from the control (by rate) is the one reported at the top level.
    scored = [(abs((c.rate or 0) - (control.rate or 0)), i) for i, c in enumerate(challengers) if c.exposures]
    if not scored:
        return result
    _, best = max(scored)
    chosen, comparison = challengers[best], comparisons[best]
    result["challenger"] = chosen.name
    for key in ("p_value", "z", "lift", "lift_ci", "absolute_lift", "absolute_lift_ci"):
        result[key] = comparison[key]
    enough = all(v.exposures >= min_sample for v in variants)
    significant = comparison["p_value"] is not None and comparison["p_value"] < alpha
    if significant and enough:
        result["status"] = "winner"
        result["winner"] = chosen.name if (chosen.rate or 0) > (control.rate or 0) else control.name
        return result
    result["status"] = "not_significant"
    needed = sample_size_per_variant(control.rate or 0.0, chosen.rate or 0.0, alpha=alpha)
    if needed is not None:
        target = max(needed, min_sample)
        result["more_exposures_needed"] = sum(max(0, target - v.exposures) for v in (control, chosen)) + sum(
            max(0, min_sample - v.exposures) for v in challengers if v is not chosen
        )
    elif not enough:
        result["more_exposures_needed"] = sum(max(0, min_sample - v.exposures) for v in variants)
    if significant and not enough:
        # Significant but under the minimum sample: only the minimum sample is missing.
        result["more_exposures_needed"] = sum(max(0, min_sample - v.exposures) for v in variants)
    return result
