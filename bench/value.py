"""Benchmark of the customer-value fit and store (issue 19): BG/NBD + Gamma-Gamma on 1 M customers / 20 M orders.

    python bench/value.py [--customers 1000000] [--events 20000000] [--runs 3] [--keep] [--no-before]

Uses its own database (martech_bench_value; `--keep` reuses its data when it already holds these sizes).
Generates in Postgres a synthetic base: every customer arrives on a day of the two years before as_of and
buys at their own rate (a Gamma mixture: a few buy often, most rarely) until as_of, each order a value
around their own mean; so about half buy again. Then the purchase days are caught up once (timed: on a
new base this is their full rebuild, what the first fit after a bulk load pays). Then `--runs` times, as
the daily job runs: a day's orders (1/730 of the orders, on as_of, for random customers) are inserted,
untimed, as an import would; value_model_fit(as_of) is timed as a whole (the purchase days catching up
with that day, the summary, the two maximum-likelihood fits and the predictions in numpy, and every
customer's RFM scores, predictions and lead score written with one DELETE and one INSERT … SELECT,
committed); and, unless --no-before, the code before the purchase days (bench/value_before.py: the
summary grouped from every order) fits and stores the same data, timed the same way, and its summary is
checked equal to the current one. The day's orders are deleted at the end. Ends with one line:
fit_store_s=… (median) fit_store_max_s=… before_s=… (median) customers=… events=… buyers=… r=… alpha=… a=… b=…
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

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
    parser.add_argument(
        "--no-before", action="store_true", help="do not time the code before the purchase days"
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

    from django.conf import settings
    from django.db import connection
    from value_before import value_model_fit_before

    from crm_tags.value.purchases import purchase_days_catch_up, purchase_summary_arrays
    from crm_tags.value.store import as_of_moment

    started = time.perf_counter()
    done = purchase_days_catch_up(order_type="order", time_zone=settings.TIME_ZONE)
    print(f"purchase days {done} in {time.perf_counter() - started:.2f}s ({load()})")

    seconds, before, same = [], [], []
    fit = None
    daily = max(args.events // 730, 1)
    for run in range(args.runs):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, amount, channel, properties) "
                "SELECT c.id, 'order', %s::timestamptz - random() * interval '10 hours', "
                "round((10 + random() * 90)::numeric, 2), 'bench-day', '{}' "
                "FROM generate_series(1, %s) g JOIN crm_tags_customer c "
                "ON c.external_id = 'V' || (1 + abs(hashint8(g + %s * 7919)) %% %s)",
                [f"{AS_OF}T20:00:00+08:00", daily, run, args.customers],
            )
        started = time.perf_counter()
        fit = value_model_fit(as_of=AS_OF, time_unit="weeks")
        seconds.append(time.perf_counter() - started)
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in fit.params["seconds_by_stage"].items())
        line = f"run {run}: {seconds[-1]:.2f}s ({stages}; {fit.customers} buyers, +{daily} orders that day)"
        if not args.no_before:
            old = value_model_fit_before(AS_OF, "weeks", settings.TIME_ZONE, "order")
            before.append(old["times"]["total"])
            with connection.cursor() as cursor:
                new = purchase_summary_arrays(
                    cursor,
                    as_of=AS_OF,
                    moment=as_of_moment(AS_OF),
                    order_type="order",
                    time_zone=settings.TIME_ZONE,
                )
            same.append(
                all(
                    len(new[c]) == len(old["summary"][c])
                    and (
                        np.allclose(new[c], old["summary"][c], rtol=1e-12, atol=1e-9)
                        if c in ("monetary", "spent")
                        else np.array_equal(new[c], old["summary"][c])
                    )
                    for c in new
                )
            )
            stages = ", ".join(f"{k} {v:.2f}s" for k, v in old["times"].items())
            line += f"; before: {stages}; same summary: {same[-1]}"
        print(line + f" ({load()})")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_tags_event WHERE channel = 'bench-day'")
        print(f"the day's orders deleted: {cursor.rowcount}")
    assert fit is not None
    assert all(same), "the summary differs from the code before"
    stored = CustomerValue.objects.count()
    assert stored == args.customers, stored
    bg = fit.params["bg_nbd"]
    print(f"end: {load()}")
    print(
        f"fit_store_s={statistics.median(seconds):.2f} fit_store_max_s={max(seconds):.2f} "
        + (f"before_s={statistics.median(before):.2f} " if before else "")
        + f"customers={stored} events={events} buyers={fit.customers} "
        + " ".join(f"{k}={bg[k]:.4f}" for k in ("r", "alpha", "a", "b"))
    )


if __name__ == "__main__":
    main()
