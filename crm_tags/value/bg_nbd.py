"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

A customer is described by three numbers in one time unit (weeks or days, the caller's choice, the same
for all three and for every horizon asked about later):

- frequency x: the number of repeat purchases (purchase days after the first one) up to the calibration end,
- recency t_x: the time from the first purchase to the last one (0 when x = 0),
- age T: the time from the first purchase to the calibration end.

While alive a customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after each purchase they drop out
with probability p ~ Beta(a, b). The four parameters are fitted by maximum likelihood (equation 6 of the
paper, in log space), and give per customer the expected number of purchases in the next t time units
(equation 10) and the probability of being still alive.
"""

from dataclasses import dataclass

import numpy as np
from django.utils.translation import gettext as _
from scipy.special import digamma, expit, gammaln, hyp2f1

from crm_tags.value.likelihood import ValueModelError, as_float_array, distinct_rows, maximise


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class BgNbdFit:
    params: BgNbdParams
    log_likelihood: float
    customers: int


@dataclass(frozen=True)
class Customers:
    """Validated frequency, recency and age arrays of equal length."""

    frequency: np.ndarray
    recency: np.ndarray
    age: np.ndarray


def customers_of(frequency: object, recency: object, age: object) -> Customers:
    """The three arrays checked: whole non-negative frequencies and 0 <= recency <= age."""
    x = as_float_array("frequency", frequency)
    t_x = as_float_array("recency", recency)
    T = as_float_array("age", age)
    if not (len(x) == len(t_x) == len(T)):
        raise ValueModelError(
            _("frequency, recency and age must have one value per customer (got %(x)s, %(t_x)s and %(T)s)")
            % {"x": len(x), "t_x": len(t_x), "T": len(T)}
        )
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueModelError(_("frequency must be a whole number of repeat purchases, 0 or more"))
    if np.any(T < 0):
        raise ValueModelError(
            _("age must not be negative (it is the time from the first purchase to the end)")
        )
    if np.any(t_x < 0) or np.any(t_x > T):
        raise ValueModelError(_("recency must be between 0 and the customer's age"))
    if np.any((x > 0) & (t_x <= 0)):
        raise ValueModelError(_("recency must be greater than 0 for a customer with repeat purchases"))
    return Customers(frequency=x, recency=t_x, age=T)


@dataclass(frozen=True)
class _Sample:
    """The customers as the likelihood reads them: the distinct (x, t_x, T) rows of repeat buyers and the
    distinct ages of the others, each with how many customers share it, and the distinct frequencies."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weight: np.ndarray
    T_once: np.ndarray
    weight_once: np.ndarray
    frequencies: np.ndarray
    frequency_counts: np.ndarray
    customers: int


def _sample_of(c: Customers) -> _Sample:
    repeat = c.frequency > 0
    (x, t_x, T), _rows, weight = distinct_rows(c.frequency[repeat], c.recency[repeat], c.age[repeat])
    (T_once,), _rows_once, weight_once = distinct_rows(c.age[~repeat])
    frequencies, counts = np.unique(c.frequency, return_counts=True)
    return _Sample(x, t_x, T, weight, T_once, weight_once, frequencies, counts, len(c.frequency))


def _mean_log_likelihood(params: np.ndarray, s: _Sample) -> tuple[float, np.ndarray]:
    """Equation 6 of the paper summed over the customers, and its gradient, both per customer."""
    r, alpha, a, b = params
    n = s.customers
    # the terms in x alone, over the distinct frequencies; sums are (u * v).sum(), not u @ v: a BLAS dot
    # of one long vector is far slower on a busy machine
    ux, cx = s.frequencies, s.frequency_counts
    value = (cx * (gammaln(r + ux) - gammaln(r))).sum() + n * r * np.log(alpha)
    value += (cx * (gammaln(a + b) + gammaln(b + ux) - gammaln(b) - gammaln(a + b + ux))).sum()
    d_r = (cx * (digamma(r + ux) - digamma(r))).sum() + n * np.log(alpha)
    d_alpha = n * r / alpha
    d_a = (cx * (digamma(a + b) - digamma(a + b + ux))).sum()
    d_b = (cx * (digamma(a + b) + digamma(b + ux) - digamma(b) - digamma(a + b + ux))).sum()

    # customers without a repeat purchase: (alpha + T)^-r
    log_once = np.log(alpha + s.T_once)
    value -= r * (s.weight_once * log_once).sum()
    d_r -= (s.weight_once * log_once).sum()
    d_alpha -= r * (s.weight_once / (alpha + s.T_once)).sum()

    # repeat buyers: log of (alpha + T)^-(r+x) + a / (b + x - 1) * (alpha + t_x)^-(r+x), without overflow
    x, w = s.x, s.weight
    log_T = np.log(alpha + s.T)
    log_tx = np.log(alpha + s.t_x)
    a3 = -(r + x) * log_T
    a4 = np.log(a) - np.log(b + x - 1) - (r + x) * log_tx
    top = np.maximum(a3, a4)
    e3 = np.exp(a3 - top)
    e4 = np.exp(a4 - top)
    total = e3 + e4
    w3 = w * e3 / total
    w4 = w * e4 / total
    value += (w * (top + np.log(total))).sum()
    d_r -= (w3 * log_T).sum() + (w4 * log_tx).sum()
    d_alpha -= (w3 * (r + x) / (alpha + s.T)).sum() + (w4 * (r + x) / (alpha + s.t_x)).sum()
    d_a += w4.sum() / a
    d_b -= (w4 / (b + x - 1)).sum()
    return value / n, np.array([d_r, d_alpha, d_a, d_b]) / n


def bg_nbd_log_likelihood(params: BgNbdParams, frequency: object, recency: object, age: object) -> float:
    """The total log-likelihood of these customers under these parameters."""
    s = _sample_of(customers_of(frequency, recency, age))
    mean, _gradient = _mean_log_likelihood(np.array([params.r, params.alpha, params.a, params.b]), s)
    return float(mean * s.customers)


def bg_nbd_fit(frequency: object, recency: object, age: object) -> BgNbdFit:
    """The maximum-likelihood parameters for these customers."""
    c = customers_of(frequency, recency, age)
    if not np.any(c.frequency > 0):
        raise ValueModelError(_("the BG/NBD model needs at least one customer with a repeat purchase"))
    s = _sample_of(c)
    # alpha is on the scale of the time unit: start it at the mean age, the rest at 1
    start = np.array([1.0, max(float(np.mean(c.age)), 1e-6), 1.0, 1.0])
    best = maximise(lambda p: _mean_log_likelihood(p, s), start, model="BG/NBD")
    mean, _gradient = _mean_log_likelihood(best, s)
    return BgNbdFit(
        params=BgNbdParams(*(float(v) for v in best)),
        log_likelihood=float(mean * s.customers),
        customers=s.customers,
    )


def _log_death_odds(params: BgNbdParams, c: Customers) -> np.ndarray:
    """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x): the odds of having dropped out (-inf when x = 0)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x = c.frequency
    repeat = x > 0
    b_x_1 = np.where(repeat, b + x - 1, 1.0)
    odds = np.log(a) - np.log(b_x_1) + (r + x) * (np.log(alpha + c.age) - np.log(alpha + c.recency))
    return np.where(repeat, odds, -np.inf)


def p_alive(params: BgNbdParams, frequency: object, recency: object, age: object) -> np.ndarray:
    """Each customer's probability of being still alive at the calibration end."""
    c = customers_of(frequency, recency, age)
    return expit(-_log_death_odds(params, c))


def expected_purchases(
    params: BgNbdParams, horizon: float, frequency: object, recency: object, age: object
) -> np.ndarray:
    """Each customer's expected number of purchases in the next `horizon` time units (equation 10)."""
    curves, row, alive = purchase_curves(params, [horizon], customers_of(frequency, recency, age))
    return curves[0][row] * alive


def purchase_curves(
    params: BgNbdParams, horizons: list[float], c: Customers
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equation 10 in two factors: E[Y(t) | x, t_x, T] = curves[i, row] * alive for horizon i. The curve
    depends on (x, T) alone, so it is computed once per distinct pair (row: each customer's pair);
    alive is each customer's P(alive)."""
    for horizon in horizons:
        if not isinstance(horizon, int | float) or not np.isfinite(horizon) or horizon < 0:
            raise ValueModelError(
                _("the horizon must be a number of time units, 0 or more, not %(horizon)r")
                % {"horizon": horizon}
            )
    if params.a == 1.0:
        raise ValueModelError(_("the expected purchases are undefined for a = 1"))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    (x, T), row, _sizes = distinct_rows(c.frequency, c.age)
    curves = np.empty((len(horizons), len(x)))
    for i, horizon in enumerate(horizons):
        later = alpha + T + horizon
        tail = np.exp((r + x) * (np.log(alpha + T) - np.log(later))) * hyp2f1(
            r + x, b + x, a + b + x - 1, horizon / later
        )
        curves[i] = (a + b + x - 1) / (a - 1) * (1 - tail)
    return curves, row, expit(-_log_death_odds(params, c))
