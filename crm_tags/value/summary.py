"""From purchases to the numbers the value models read: frequency, recency, age and mean repeat spend.

As in Fader, Hardie & Lee's treatment of the CDNOW data, purchases are counted by day: several orders on
one day are one purchase whose value is their sum. Frequency is the number of purchase days after the
first, recency the time from the first purchase day to the last, age the time from the first purchase day
to the calibration end (`as_of`, a day; purchases after it are left out), monetary the mean value of the
repeat purchase days (0 when there is none), all in one time unit.
"""

import datetime

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _

from crm_tags.value.likelihood import ValueModelError

TIME_UNIT_DAYS = {"weeks": 7, "days": 1}


def _days(name: str, values: object) -> np.ndarray:
    try:
        return np.asarray(values, dtype="datetime64[D]").astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueModelError(_("%(name)s must be dates: %(error)s") % {"name": name, "error": exc}) from exc


def purchase_summary(
    customer_ids: object,
    days: object,
    amounts: object,
    *,
    as_of: datetime.date,
    time_unit: str,
) -> pd.DataFrame:
    """One row per customer who bought by `as_of` (indexed by customer id): frequency, recency, age and
    monetary. `days` are the purchases' dates (local days, as the caller counts them); a missing amount
    counts as 0."""
    if time_unit not in TIME_UNIT_DAYS:
        raise ValueModelError(
            _("time unit must be one of %(units)s, not %(unit)r")
            % {"units": ", ".join(TIME_UNIT_DAYS), "unit": time_unit}
        )
    day = _days("purchase days", days)
    end = _days("as_of", as_of).item()
    try:
        amount = np.asarray(amounts, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueModelError(_("amounts must be numbers: %(error)s") % {"error": exc}) from exc
    ids = np.asarray(customer_ids)
    if not (len(ids) == len(day) == len(amount)):
        raise ValueModelError(
            _(
                "customer ids, days and amounts must have one value per purchase (got %(ids)s, %(days)s and %(amounts)s)"
            )
            % {"ids": len(ids), "days": len(day), "amounts": len(amount)}
        )
    kept = day <= end
    purchases = pd.DataFrame({"customer": ids[kept], "day": day[kept], "amount": np.nan_to_num(amount[kept])})
    # one purchase per customer and day, ordered by customer then day
    daily = purchases.groupby(["customer", "day"], sort=True)["amount"].sum().reset_index()
    per_customer = daily.groupby("customer", sort=True).agg(
        first=("day", "first"),
        last=("day", "last"),
        purchases=("day", "size"),
        spent=("amount", "sum"),
        first_spent=("amount", "first"),
    )
    unit = TIME_UNIT_DAYS[time_unit]
    frequency = per_customer["purchases"] - 1
    repeat_spent = per_customer["spent"] - per_customer["first_spent"]
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (per_customer["last"] - per_customer["first"]) / unit,
            "age": (end - per_customer["first"]) / unit,
            "monetary": np.where(frequency > 0, repeat_spent / frequency.clip(lower=1), 0.0),
        },
        index=per_customer.index,
    )
