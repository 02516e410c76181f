"""The Gamma-Gamma model of spend per transaction (Fader & Hardie 2013, "The Gamma-Gamma Model of
Monetary Value"), and customer lifetime value from it and the BG/NBD model.

Data definition, as in the note: a customer's frequency x is their number of repeat purchases in the
calibration period and m_x the mean value of those x repeat purchases (the first purchase is left out). The
model is fitted on the customers with x > 0. Each transaction value is Gamma(p, nu) with nu ~ Gamma(q,
gamma) across customers; the fit maximises equation 3 of the note (in log space) and a customer's
expected spend per transaction is the posterior mean E(M | p, q, gamma, m_x, x).
"""

from dataclasses import dataclass

import numpy as np
from django.utils.translation import gettext as _
from scipy.special import digamma, gammaln

from crm_tags.value.bg_nbd import BgNbdParams, customers_of, purchase_curves
from crm_tags.value.likelihood import ValueModelError, as_float_array, maximise

# lifetimes' customer_lifetime_value steps a month as 4.345 weeks or 30 days; we keep its factors so
# our figures can be compared with it
PERIODS_PER_MONTH = {"weeks": 4.345, "days": 30.0}


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    customers: int


def _spenders(frequency: object, monetary: object) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array("frequency", frequency)
    m = as_float_array("monetary value", monetary)
    if len(x) != len(m):
        raise ValueModelError(
            _("frequency and monetary value must have one value per customer (got %(x)s and %(m)s)")
            % {"x": len(x), "m": len(m)}
        )
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueModelError(_("frequency must be a whole number of repeat purchases, 0 or more"))
    if np.any(m < 0):
        raise ValueModelError(_("monetary value must not be negative"))
    return x, m


def _mean_log_likelihood(params: np.ndarray, s: dict[str, np.ndarray | float]) -> tuple[float, np.ndarray]:
    """Equation 3 of the note summed over the customers, and its gradient, both per customer. The terms in
    x alone are computed over the distinct frequencies; the rest needs one log per customer."""
    p, q, gamma = params
    x, m, ux, cx, n = s["x"], s["m"], s["frequencies"], s["counts"], s["customers"]
    pux = p * ux
    log_total = np.log(gamma + m * x)
    inverse_total = 1 / (gamma + m * x)
    value = (cx * (gammaln(pux + q) - gammaln(pux) - gammaln(q))).sum() + n * q * np.log(gamma)
    value += p * s["x_log_mx"] - s["log_m"] - p * (x * log_total).sum() - q * log_total.sum()
    psi = digamma(pux + q)
    gradient = np.array(
        [
            (cx * ux * (psi - digamma(pux))).sum() + s["x_log_mx"] - (x * log_total).sum(),
            (cx * (psi - digamma(q))).sum() + n * np.log(gamma) - log_total.sum(),
            n * q / gamma - p * (x * inverse_total).sum() - q * inverse_total.sum(),
        ]
    )
    return value / n, gradient / n


def gamma_gamma_fit(frequency: object, monetary: object) -> GammaGammaFit:
    """The maximum-likelihood parameters, fitted on the customers with at least one repeat purchase of
    some value (a repeat buyer whose purchases carry no amount, m_x = 0, tells nothing about spend)."""
    x, m = _spenders(frequency, monetary)
    repeat = (x > 0) & (m > 0)
    if not np.any(repeat):
        raise ValueModelError(_("the Gamma-Gamma model needs at least one repeat purchase with a value"))
    x, m = x[repeat], m[repeat]
    frequencies, counts = np.unique(x, return_counts=True)
    sample = {
        "x": x,
        "m": m,
        "frequencies": frequencies,
        "counts": counts,
        "customers": len(x),
        "x_log_mx": float((x * (np.log(m) + np.log(x))).sum()),
        "log_m": float(np.log(m).sum()),
    }
    # gamma is on the scale of the currency: start it at the mean spend, p and q at 1
    start = np.array([1.0, 1.0, float(np.mean(m))])
    best = maximise(lambda params: _mean_log_likelihood(params, sample), start, model="Gamma-Gamma")
    mean, _gradient = _mean_log_likelihood(best, sample)
    return GammaGammaFit(
        params=GammaGammaParams(*(float(v) for v in best)),
        log_likelihood=float(mean * len(x)),
        customers=len(x),
    )


def expected_spend(params: GammaGammaParams, frequency: object, monetary: object) -> np.ndarray:
    """Each customer's expected spend per transaction: a weighted mean of the population mean
    gamma*p/(q-1) and their own m_x, the more weight on m_x the more they bought (x = 0 gets the former)."""
    if params.q <= 1:
        raise ValueModelError(_("the expected spend needs q > 1 (the population mean spend is infinite)"))
    x, m = _spenders(frequency, monetary)
    p, q, gamma = params.p, params.q, params.gamma
    return (gamma + m * x) * p / (p * x + q - 1)


def customer_lifetime_value(
    bg_nbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: object,
    recency: object,
    age: object,
    monetary: object,
    *,
    time_unit: str,
    months: int = 12,
    discount_rate: float = 0.01,
) -> np.ndarray:
    """Each customer's discounted expected spend over the next `months` months, as lifetimes computes it:
    the sum over months i = 1..months of (expected purchases by the end of month i - by the end of month
    i-1) * expected spend per transaction / (1 + discount_rate)^i.

    `discount_rate` is a MONTHLY rate: 0.01 (the default) is about 12.7 % a year; 0 gives the undiscounted
    expected spend. `time_unit` ("weeks" or "days") is the unit of recency and age; a month is
    PERIODS_PER_MONTH of it."""
    if time_unit not in PERIODS_PER_MONTH:
        raise ValueModelError(
            _("time unit must be one of %(units)s, not %(unit)r")
            % {"units": ", ".join(PERIODS_PER_MONTH), "unit": time_unit}
        )
    if not isinstance(months, int) or months < 1:
        raise ValueModelError(_("months must be a whole number of months, 1 or more"))
    if not isinstance(discount_rate, int | float) or not np.isfinite(discount_rate) or discount_rate <= -1:
        raise ValueModelError(_("the discount rate must be a monthly rate greater than -1 (e.g. 0.01)"))
    c = customers_of(frequency, recency, age)
    spend = expected_spend(gamma_gamma, c.frequency, monetary)
    month = PERIODS_PER_MONTH[time_unit]
    curves, row, alive = purchase_curves(bg_nbd, [i * month for i in range(months + 1)], c)
    discount = (1.0 + discount_rate) ** -np.arange(1.0, months + 1)
    discounted = (discount[:, None] * np.diff(curves, axis=0)).sum(axis=0)
    return spend * discounted[row] * alive
