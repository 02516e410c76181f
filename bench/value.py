"""Benchmark of the customer-value fit and store (issue 19): BG/NBD + Gamma-Gamma on 1 M customers / 20 M orders.

    python bench/value.py [--customers 1000000] [--events 20000000] [--runs 3] [--keep]

Uses its own database (martech_bench_value; `--keep` reuses its data when it already holds these sizes).
Generates in Postgres a synthetic base: every customer arrives on a day of the two years before as_of and
buys at their own rate (a Gamma mixture: a few buy often, most rarely) until as_of, each order a value
around their own mean; so about half buy again. Then `--runs` times: value_model_fit(as_of) as the
scheduled job runs it (the purchase summary in SQL, the two maximum-likelihood fits and the predictions
in numpy, and every customer's RFM scores, predictions and lead score written with one DELETE and one
INSERT … SELECT, committed), timed as a whole. Ends with one line:
fit_store_s=… (median) fit_store_max_s=… customers=… events=… buyers=… r=… alpha=… a=… b=…
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH), str(BENCH)]

from benchdb import bench_database_setup  # noqa: E402

DB_NAME = "martech_bench_value"
AS_OF = dt.date(2026, 6, 30)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def generate(customers: int, events: int) -> None:
    """The customers and their orders, generated in Postgres (one transaction)."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE crm_tags_customervalue, crm_tags_event, crm_tags_customer CASCADE")
        cursor.execute(
            "INSERT INTO crm_tags_customer (external_id, name, attributes, created_at, updated_at) "
            "SELECT 'V' || g, '', '{}', now(), now() FROM generate_series(1, %s) g",
            [customers],
        )
        # a customer's weight (rate of buying) is a Gamma(0.5)-like draw: the square of a normal
        cursor.execute(
            "CREATE TEMP TABLE bench_buyers ON COMMIT DROP AS SELECT id, "
            "(1 + abs(hashint8(id)) % 730) AS days, "
            "power(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()), 2) + 0.02 AS weight, "
            "10 + abs(hashint8(id * 7)) % 90 AS mean_spend FROM crm_tags_customer"
        )
        # every customer's first order on their arrival day
        cursor.execute(
            "INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, amount, channel, properties) "
            "SELECT id, 'order', %s::timestamptz - days * interval '1 day', mean_spend, 'web', '{}' "
            "FROM bench_buyers",
            [f"{AS_OF}T12:00:00+08:00"],
        )
        # the rest shared by weight (randomly rounded, so the total is --events give or take a few
        # hundred), each uniform in the customer's span, written in customer order as an import would
        cursor.execute(
            "INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, amount, channel, properties) "
            "SELECT b.id, 'order', %s::timestamptz - random() * b.days * interval '1 day', "
            "round((b.mean_spend * (0.5 + random()))::numeric, 2), 'web', '{}' "
            "FROM (SELECT id, days, mean_spend, floor(weight * %s / sum(weight) OVER () + random())::int AS n "
            "FROM bench_buyers) b CROSS JOIN LATERAL generate_series(1, b.n) ORDER BY b.id",
            [f"{AS_OF}T12:00:00+08:00", max(events - customers, 0)],
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE crm_tags_customer")
        cursor.execute("VACUUM ANALYZE crm_tags_event")
    print(
        f"generated {customers} customers and about {events} orders in {time.perf_counter() - started:.1f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--keep", action="store_true", help="reuse the database's data when it has these sizes"
    )
    args = parser.parse_args()
    if args.events < args.customers:
        parser.error("--events must be at least --customers (everyone has a first order)")

    bench_database_setup(DB_NAME, keep=args.keep, redis_db=3)
    from crm_tags.models import Customer, CustomerValue, Event
    from crm_tags.value.store import value_model_fit

    if (
        Customer.objects.count() != args.customers
        or abs(Event.objects.count() - args.events) > args.events // 100
    ):
        generate(args.customers, args.events)
    events = Event.objects.count()
    print(f"start: {load()}; {Customer.objects.count()} customers, {Event.objects.count()} events")

    seconds = []
    fit = None
    for run in range(args.runs):
        started = time.perf_counter()
        fit = value_model_fit(as_of=AS_OF, time_unit="weeks")
        seconds.append(time.perf_counter() - started)
        print(f"run {run}: {seconds[-1]:.2f}s ({fit.customers} buyers)")
    assert fit is not None
    stored = CustomerValue.objects.count()
    assert stored == args.customers, stored
    bg = fit.params["bg_nbd"]
    print(f"end: {load()}")
    print(
        f"fit_store_s={statistics.median(seconds):.2f} fit_store_max_s={max(seconds):.2f} "
        f"customers={stored} events={events} buyers={fit.customers} "
        + " ".join(f"{k}={bg[k]:.4f}" for k in ("r", "alpha", "a", "b"))
    )


if __name__ == "__main__":
    main()
