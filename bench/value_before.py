"""The value fit as it was before the purchase days (commit 3eb4332's crm_tags/value/store.py): the purchase
summary grouped from every order in SQL and fetched row by row, the predictions passed back as Python
lists through unnest. Kept only so that bench/value.py can time it beside the current code on the same
data, in the same run; it writes the same table and must store the same values."""

import datetime

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from crm_tags.rules import tune_session_for_rules
from crm_tags.value.lead_score import lead_scores_sql
from crm_tags.value.rfm import rfm_scores_sql
from crm_tags.value.store import PREDICTED, _predictions, as_of_moment

SUMMARY_SQL = """
WITH daily AS (
    SELECT customer_id, (occurred_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS orders,
           COALESCE(sum(amount), 0)::float8 AS spent
    FROM crm_tags_event WHERE event_type = %(order_type)s AND occurred_at <= %(as_of)s
    GROUP BY customer_id, day
), marked AS (
    SELECT *, min(day) OVER (PARTITION BY customer_id) AS first FROM daily
), buyers AS (
    SELECT customer_id, count(*) AS days, sum(orders) AS orders, min(first) AS first, max(day) AS last,
           sum(spent) AS spent, sum(spent) FILTER (WHERE day = first) AS first_spent
    FROM marked GROUP BY customer_id
)
SELECT customer_id, days - 1 AS frequency, last - first AS recency_days, %(day)s::date - first AS age_days,
       CASE WHEN days > 1 THEN (spent - first_spent) / (days - 1) ELSE 0 END AS monetary,
       %(day)s::date - last AS days_since_last, orders, spent
FROM buyers ORDER BY customer_id
"""
COLUMNS = (
    "customer_id",
    "frequency",
    "recency_days",
    "age_days",
    "monetary",
    "days_since_last",
    "orders",
    "spent",
)


def summary_before(cursor, day: datetime.date, tz: str, order_type: str) -> dict[str, np.ndarray]:
    cursor.execute(SUMMARY_SQL, {"tz": tz, "order_type": order_type, "as_of": as_of_moment(day), "day": day})
    table = np.array(cursor.fetchall(), dtype=float).reshape(-1, len(COLUMNS))
    arrays = {name: table[:, i] for i, name in enumerate(COLUMNS)}
    arrays["customer_id"] = arrays["customer_id"].astype(np.int64)
    return arrays


def store_before(s: dict[str, np.ndarray], values: dict[str, np.ndarray], day: datetime.date) -> int:
    moment = as_of_moment(day)
    rfm = rfm_scores_sql(
        "SELECT * FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::float8[])"
        " AS s(customer_id, recency, frequency, monetary)"
    )
    rfm_params = [s["customer_id"].tolist(), *(s[c].tolist() for c in ("days_since_last", "orders", "spent"))]
    lead_sql, lead_params = lead_scores_sql(moment)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_tags_customervalue")
        cursor.execute(
            "INSERT INTO crm_tags_customervalue (customer_id, recency_score, frequency_score, monetary_score,"  # noqa: S608
            f" segment, {', '.join(PREDICTED)}, lead_score, computed_at, as_of)"
            f" WITH rfm AS ({rfm}), lead AS ({lead_sql}),"
            " predicted AS (SELECT * FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::float8[],"
            f" %s::float8[]) AS p(customer_id, {', '.join(PREDICTED)}))"
            " SELECT c.id, rfm.recency_score, rfm.frequency_score, rfm.monetary_score, rfm.segment,"
            f" {', '.join(f'p.{c}' for c in PREDICTED)}, COALESCE(lead.lead_score, 0), %s, %s"
            " FROM crm_tags_customer c LEFT JOIN rfm ON rfm.customer_id = c.id"
            " LEFT JOIN predicted p ON p.customer_id = c.id LEFT JOIN lead ON lead.customer_id = c.id",
            [
                *rfm_params,
                *lead_params,
                s["customer_id"].tolist(),
                *(values[c].tolist() for c in PREDICTED),
                timezone.now(),
                day,
            ],
        )
        return cursor.rowcount


def value_model_fit_before(day: datetime.date, time_unit: str, tz: str, order_type: str) -> dict:
    """The old fit and store, committed; returns the summary arrays and the stage times."""
    import time

    times = {}
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        tune_session_for_rules(cursor)
        summary = summary_before(cursor, day, tz, order_type)
        times["summary"] = time.perf_counter() - started
        _params, values = _predictions(summary, time_unit)
        times["fit"] = time.perf_counter() - started - times["summary"]
        store_before(summary, values, day)
    times["total"] = time.perf_counter() - started
    times["store"] = times["total"] - times["summary"] - times["fit"]
    return {"summary": summary, "times": times}
