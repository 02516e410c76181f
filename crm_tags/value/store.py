"""Fit the value models on the orders up to a day and store every customer's computed value, set-based.

First the purchase days catch up with the events imported since the last fit (crm_tags.value.purchases,
its own short transaction). Then one transaction: the purchase summary (one row per buyer, the same
numbers as `purchase_summary`, read from the purchase days and, for the customers they do not answer for,
from their orders) through a binary COPY into numpy for the fits and predictions; the predictions
copied back (binary) into a temporary table; and the whole base's values (RFM scores and segments in SQL
over it, the predictions, the lead score) replace the stored ones with one MERGE. Readers see the old
values until it commits.

`customer_values_as_of` computes the same values as of an earlier day into a temporary table, for rules
evaluated (back-tested) as of that day.
"""

import datetime
import logging
import time

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm_tags.models import CustomerValue, LeadScoreRule, ValueModelFit
from crm_tags.rules import tune_session_for_rules
from crm_tags.value.bg_nbd import bg_nbd_fit, expected_purchases, p_alive
from crm_tags.value.gamma_gamma import customer_lifetime_value, expected_spend, gamma_gamma_fit
from crm_tags.value.lead_score import lead_scores_sql
from crm_tags.value.likelihood import ValueModelError
from crm_tags.value.purchases import purchase_days_catch_up, purchase_summary_arrays
from crm_tags.value.rfm import rfm_scores_sql
from crm_tags.value.summary import TIME_UNIT_DAYS

log = logging.getLogger(__name__)

EXPECTED_PURCHASES_DAYS = 90
CLV_MONTHS = 12
PREDICTED = ("expected_purchases_90d", "p_alive", "expected_spend", "clv_12m")
# the temporary table the predictions are copied into: (customer_id, recency, frequency, monetary, PREDICTED…)
FITTED = "crm_value_fitted"


def as_of_moment(day: datetime.date) -> datetime.datetime:
    """The last instant of a local day: the `as_of` that rules and lead scores read events up to."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.max))


def stored_as_of() -> datetime.date | None:
    """The day the stored values were computed as of (None before the first fit)."""
    fit = ValueModelFit.objects.order_by("-fitted_at", "-id").only("as_of").first()
    return fit.as_of if fit else None


def _predictions(s: dict[str, np.ndarray], time_unit: str) -> tuple[dict, dict[str, np.ndarray]]:
    unit = TIME_UNIT_DAYS[time_unit]
    x, t_x, T, m = s["frequency"], s["recency_days"] / unit, s["age_days"] / unit, s["monetary"]
    bg = bg_nbd_fit(x, t_x, T)
    gg = gamma_gamma_fit(x, m)
    params = {
        "bg_nbd": {"r": bg.params.r, "alpha": bg.params.alpha, "a": bg.params.a, "b": bg.params.b},
        "gamma_gamma": {"p": gg.params.p, "q": gg.params.q, "gamma": gg.params.gamma},
        "log_likelihood": bg.log_likelihood,
    }
    values = {
        "expected_purchases_90d": expected_purchases(bg.params, EXPECTED_PURCHASES_DAYS / unit, x, t_x, T),
        "p_alive": p_alive(bg.params, x, t_x, T),
        "expected_spend": expected_spend(gg.params, x, m),
        "clv_12m": customer_lifetime_value(
            bg.params, gg.params, x, t_x, T, m, time_unit=time_unit, months=CLV_MONTHS
        ),
    }
    return params, values


def _copy_in_fitted(cursor: object, s: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> None:
    """The buyers' RFM inputs (days since the last order, orders, spend) and predictions into the temporary
    table FITTED, through one binary COPY (numpy writes the rows: no Python object per value)."""
    columns = {
        "customer_id": s["customer_id"],
        "recency": s["days_since_last"],
        "frequency": s["orders"],
        "monetary": s["spent"],
        **{name: values[name] for name in PREDICTED},
    }
    fields = [("count", ">i2")]
    for name in columns:
        fields += [(f"{name}_length", ">i4"), (name, ">i8" if name == "customer_id" else ">f8")]
    rows = np.empty(len(s["customer_id"]), dtype=np.dtype(fields))
    rows["count"] = len(columns)
    for name, column in columns.items():
        rows[f"{name}_length"] = 8
        rows[name] = column
    cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{FITTED}")  # type: ignore[attr-defined]
    cursor.execute(  # type: ignore[attr-defined]
        f"CREATE TEMP TABLE {FITTED} (customer_id int8, recency float8, frequency float8,"
        f" monetary float8, {', '.join(f'{name} float8' for name in PREDICTED)}) ON COMMIT DROP"
    )
    raw = getattr(cursor, "cursor", cursor)
    with raw.copy(f"COPY {FITTED} FROM STDIN (FORMAT BINARY)") as copy:  # type: ignore[attr-defined]
        copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff")
    cursor.execute(f"ANALYZE {FITTED}")  # type: ignore[attr-defined]


def _write_values(cursor: object, *, into: str, day: datetime.date, moment: datetime.datetime) -> int:
    """Every customer's row of `into` (crm_tags_customervalue or a table like it) from FITTED: RFM scores
    and segment over the base's quintiles, the predictions, the lead score. One MERGE: a customer's row is
    updated in place (its key unchanged, so no foreign-key check per row, and, the table's pages kept
    half empty, mostly without touching its index), inserted for a new customer."""
    rfm = rfm_scores_sql(f"SELECT customer_id, recency, frequency, monetary FROM {FITTED}")  # noqa: S608
    lead_join, lead_value, lead_params = "", "0::float8", []
    if LeadScoreRule.objects.filter(active=True).exists():
        lead_sql, lead_params = lead_scores_sql(moment)
        lead_join = f" LEFT JOIN ({lead_sql}) lead ON lead.customer_id = c.id"
        lead_value = "COALESCE(lead.lead_score, 0)"
    columns = ("recency_score", "frequency_score", "monetary_score", "segment", *PREDICTED)
    columns += ("lead_score", "computed_at", "as_of")
    cursor.execute(  # type: ignore[attr-defined]
        f"MERGE INTO {into} v USING (WITH rfm AS ({rfm})"  # noqa: S608 (constants and compiled rules)
        " SELECT c.id AS customer_id, rfm.recency_score, rfm.frequency_score, rfm.monetary_score, rfm.segment,"
        f" {', '.join(f'p.{c}' for c in PREDICTED)}, {lead_value} AS lead_score,"
        " %s::timestamptz AS computed_at, %s::date AS as_of"
        f" FROM crm_tags_customer c LEFT JOIN rfm ON rfm.customer_id = c.id"
        f" LEFT JOIN {FITTED} p ON p.customer_id = c.id{lead_join}) n ON v.customer_id = n.customer_id"
        f" WHEN MATCHED THEN UPDATE SET {', '.join(f'{c} = n.{c}' for c in columns)}"
        f" WHEN NOT MATCHED THEN INSERT (customer_id, {', '.join(columns)})"
        f" VALUES (n.customer_id, {', '.join(f'n.{c}' for c in columns)})",
        [timezone.now(), day, *lead_params],
    )
    return cursor.rowcount  # type: ignore[attr-defined]


def _summary(cursor: object, day: datetime.date, moment: datetime.datetime) -> dict[str, np.ndarray]:
    return purchase_summary_arrays(
        cursor,
        as_of=day,
        moment=moment,
        order_type=settings.CRM_ORDER_EVENT_TYPE,
        time_zone=settings.TIME_ZONE,
    )


def value_model_fit(*, as_of: datetime.date, time_unit: str | None = None) -> ValueModelFit:
    """Fit BG/NBD and Gamma-Gamma on the orders up to the end of `as_of` (a local day), store every
    customer's RFM scores and segment, predictions and lead score, and record the fit. Raises
    ValueModelError (with a message naming the problem) when the data cannot be fitted."""
    time_unit = time_unit or settings.CRM_VALUE_TIME_UNIT
    if time_unit not in TIME_UNIT_DAYS:
        raise ValueModelError(
            _("time unit must be one of %(units)s, not %(unit)r")
            % {"units": ", ".join(TIME_UNIT_DAYS), "unit": time_unit}
        )
    if not isinstance(as_of, datetime.date) or isinstance(as_of, datetime.datetime):
        raise ValueModelError(_("as_of must be a day (YYYY-MM-DD)"))
    started = time.monotonic()
    moment = as_of_moment(as_of)
    order_type = settings.CRM_ORDER_EVENT_TYPE
    purchase_days_catch_up(order_type=order_type, time_zone=settings.TIME_ZONE)
    stages = {"catch_up": time.monotonic() - started}
    with transaction.atomic(), connection.cursor() as cursor:
        # the rule builds' settings: no JIT; the few customers read from their orders grouped by sorting
        tune_session_for_rules(cursor)
        summary = _summary(cursor, as_of, moment)
        stages["summary"] = time.monotonic() - started - sum(stages.values())
        if not len(summary["customer_id"]):
            raise ValueModelError(
                _("no %(type)s events on or before %(day)s: nothing to fit")
                % {"type": order_type, "day": as_of}
            )
        params, values = _predictions(summary, time_unit)
        stages["fit"] = time.monotonic() - started - sum(stages.values())
        _copy_in_fitted(cursor, summary, values)
        stored = _write_values(cursor, into="crm_tags_customervalue", day=as_of, moment=moment)
        stages["store"] = time.monotonic() - started - sum(stages.values())
        params["order_event_type"] = order_type
        # where the time went (the commit, with its checks, is in the fit's seconds only)
        params["seconds_by_stage"] = {name: round(seconds, 3) for name, seconds in stages.items()}
        fit = ValueModelFit.objects.create(
            as_of=as_of,
            time_unit=time_unit,
            params=params,
            customers=len(summary["customer_id"]),
            seconds=time.monotonic() - started,
        )
    log.info(
        "value model as of %s: %d buyers, %d customers stored in %.2fs (%s)",
        as_of,
        fit.customers,
        stored,
        fit.seconds,
        ", ".join(f"{name} {seconds:.2f}s" for name, seconds in stages.items()),
    )
    return fit


def value_model_latest() -> ValueModelFit | None:
    """The newest fit (the one the stored values come from), or None."""
    return ValueModelFit.objects.order_by("-fitted_at", "-id").first()


def customer_value_of(*, customer_id: int) -> CustomerValue | None:
    """A customer's stored value, or None when none has been computed."""
    return CustomerValue.objects.filter(customer_id=customer_id).first()


def backtest_day(as_of: datetime.datetime) -> datetime.date | None:
    """The day whose computed values a rule evaluated at `as_of` reads when that is before the stored
    values' day and before yesterday: the last local day that had ended by `as_of` (the day the daily job
    would have computed then). None when the stored values are the ones to read (as_of on or after their
    day or the current one, or no values stored)."""
    stored = stored_as_of()
    if stored is None:
        return None
    day = timezone.localtime(as_of + datetime.timedelta(microseconds=1)).date() - datetime.timedelta(days=1)
    # yesterday or later is what the stored values stand for at the current as_of (the daily job's day),
    # even when a fit was run by hand for a later day: ordinary builds never compute values
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    return day if day < min(stored, yesterday) else None


def customer_values_as_of(day: datetime.date) -> str:
    """The name of a temporary table like crm_tags_customervalue holding every customer's values as the
    daily job would have computed them as of `day` (the fit and RFM on the orders up to its end, the lead
    score decayed to it, in the stored fit's time unit), made once per transaction (dropped at commit;
    needs one). Without orders by then every score and prediction is NULL; a fit that fails leaves the
    predictions NULL (logged)."""
    if not connection.in_atomic_block:
        raise RuntimeError("customer values as of a past day live in a transaction: call inside atomic()")
    table = f"crm_value_as_of_{day:%Y%m%d}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"pg_temp.{table}"])
        if cursor.fetchone()[0] is not None:
            return table
        started = time.monotonic()
        latest = value_model_latest()
        time_unit = latest.time_unit if latest else settings.CRM_VALUE_TIME_UNIT
        moment = as_of_moment(day)
        cursor.execute(
            f"CREATE TEMP TABLE {table} (LIKE crm_tags_customervalue INCLUDING DEFAULTS INCLUDING INDEXES)"
            " ON COMMIT DROP"
        )
        tune_session_for_rules(cursor)
        summary = _summary(cursor, day, moment)
        values = None
        if len(summary["customer_id"]):
            try:
                values = _predictions(summary, time_unit)[1]
            except ValueModelError as exc:
                log.warning("customer values as of %s: no predictions (%s)", day, exc)
        blank = {name: np.zeros(len(summary["customer_id"])) for name in PREDICTED}
        _copy_in_fitted(cursor, summary, values or blank)
        if values is None:  # no fit: NULL predictions, as for a customer without orders
            cursor.execute(f"UPDATE {FITTED} SET {', '.join(f'{c} = NULL' for c in PREDICTED)}")  # noqa: S608
        _write_values(cursor, into=table, day=day, moment=moment)
        cursor.execute(f"ANALYZE {table}")
    log.info("customer values as of %s computed in %.2fs", day, time.monotonic() - started)
    return table
