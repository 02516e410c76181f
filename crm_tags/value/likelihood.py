"""Maximum likelihood over positive parameters: the optimiser works on their logarithms, so it never
steps outside the domain, and every model hands it its mean log-likelihood and gradient at once."""

from collections.abc import Callable

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _
from scipy.optimize import minimize


class ValueModelError(ValueError):
    """The data cannot be fitted or scored: the message names what is wrong."""


def require_finite(name: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueModelError(_("%(name)s must be finite numbers (found NaN or infinity)") % {"name": name})


def as_float_array(name: str, values: object) -> np.ndarray:
    """A 1-d float array of these values, or an error naming the argument."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueModelError(
            _("%(name)s must be numbers: %(error)s") % {"name": name, "error": exc}
        ) from exc
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueModelError(
            _("%(name)s must be one-dimensional, not of shape %(shape)s")
            % {"name": name, "shape": array.shape}
        )
    require_finite(name, array)
    return array


def maximise(
    mean_log_likelihood: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: np.ndarray,
    *,
    model: str,
) -> np.ndarray:
    """The positive parameters maximising the likelihood. `mean_log_likelihood(params)` returns the
    mean log-likelihood per customer and its gradient with respect to the parameters."""

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        value, gradient = mean_log_likelihood(params)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(log_params)
        # d/d(log p) = p * d/dp
        return -value, -gradient * params

    result = minimize(
        objective,
        np.log(start),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-30.0, 30.0)] * len(start),
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise ValueModelError(
            _("the %(model)s fit did not converge: %(reason)s") % {"model": model, "reason": result.message}
        )
    if not result.success and np.max(np.abs(result.jac)) > 1e-6:
        raise ValueModelError(
            _("the %(model)s fit did not converge: %(reason)s") % {"model": model, "reason": result.message}
        )
    return np.exp(result.x)


def distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The distinct rows of these equal-length columns, each customer's row number among them, and how
    many customers share each row (customers of a real base often repeat: same frequency, same days)."""
    frame = pd.DataFrame({str(i): column for i, column in enumerate(columns)})
    groups = frame.groupby(list(frame.columns), sort=False)
    sizes = groups.size()
    distinct = [sizes.index.get_level_values(i).to_numpy(dtype=float) for i in range(len(columns))]
    return distinct, groups.ngroup().to_numpy(), sizes.to_numpy(dtype=float)
