"""Benchmark of events partitioned by month: a 30-day-window rule rebuilt over one year of history, then
over five, in the same run (cost should follow the window, not the history), and the events import rate
into the partitioned table.

    python bench/scale.py [--customers 5000000] [--events-per-year 20000000] [--years 5] [--reps 5]
                          [--files DIR] [--plain]

Own database (martech_bench_scale, recreated and migrated). Customers and one CSV of events per year are
generated (80 % page views, 20 % orders); --files DIR keeps the CSV files for reuse. The most recent
year is imported first (the bulk path: COPY, totals, indexes rebuilt, the months of its rows made first),
the rule ("order amount in the
last 30 days >= 300", a grouped window scan: no ranks answer it) rebuilt --reps times from an empty
membership, then the four older years are imported (a load too small for the bulk path waits in the default
partition until the upkeep, run next, moves it into its months) and the rule rebuilt again. With --plain the events
table is then converted back to one plain table (crm_tags.partitions.convert_back) and the rule rebuilt
once more: the same history unpartitioned, for comparison. With --fanout-parts N the rule is also built
over N customer-id ranges (crm_tags/fanout.py; the ranges run one after another in this process).
Every rebuild's membership is checked equal.
Ends with one line: import_rows_per_s=… rebuild_1y_s=… rebuild_all_s=… ratio=… [rebuild_fanout_s=…
fanout_ratio=…] [rebuild_plain_s=…]
partitions=… events=…
"""

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchdb import bench_database_setup

DB_NAME = "martech_bench_scale"
RULE = {"event": "order", "agg": "sum", "field": "amount", "window_days": 30, "op": ">=", "value": 300}
YEAR = 365 * 86400


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def customers_file(directory: Path, customers: int) -> Path:
    path = directory / f"customers-{customers}.csv"
    if not path.exists():
        with path.open("w") as out:
            out.write("external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n")
            for i in range(customers):
                out.write(f"S{i},Name {i},,,Shanghai,f,1990-01-01,2020-01-01,web\n")
    return path


def events_file(directory: Path, customers: int, rows: int, year: int, now: datetime) -> Path:
    """One year of events: year 0 is the last 365 days, year 1 the 365 before them, and so on."""
    path = directory / f"events-{customers}-{rows}-{year}.csv"
    if path.exists():
        return path
    rng = random.Random(year)
    end = now - timedelta(seconds=year * YEAR)
    with path.open("w") as out:
        out.write("customer_external_id,event_type,occurred_at,amount,channel\n")
        lines = []
        for _ in range(rows):
            at = (end - timedelta(seconds=rng.randrange(YEAR))).isoformat()
            if rng.random() < 0.8:
                lines.append(f"S{rng.randrange(customers)},page_view,{at},,web\n")
            else:
                lines.append(f"S{rng.randrange(customers)},order,{at},{rng.randint(10, 400)}.00,app\n")
            if len(lines) >= 100_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5_000_000)
    parser.add_argument("--events-per-year", type=int, default=20_000_000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--files", help="directory that keeps the generated CSV files for reuse")
    parser.add_argument("--plain", action="store_true", help="also rebuild over the history unpartitioned")
    parser.add_argument("--fanout-parts", type=int, default=0, help="also build over N customer-id ranges")
    args = parser.parse_args()
    bench_database_setup(DB_NAME, redis_db=12)

    from django.db import connection, transaction

    from crm_tags import importers, partitions, services
    from crm_tags.models import Tag, TagBuild, TagMembership, TagVersion

    print(f"start: {load()}")
    now = datetime.now(UTC).replace(microsecond=0)
    directory = Path(args.files) if args.files else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    directory.mkdir(parents=True, exist_ok=True)

    def run_import(path: Path, what: str) -> float:
        with path.open("rb") as upload:
            started = time.perf_counter()
            result = importers.import_events(upload)
            seconds = time.perf_counter() - started
        rate = result.rows / seconds
        print(f"{what}: {result.rows} rows in {seconds:.1f}s ({rate:,.0f} rows/s; {load()})")
        return rate

    def vacuum() -> None:
        with connection.cursor() as cursor:
            for table in ("crm_tags_event", "crm_tags_customereventtotal", "crm_tags_customer"):
                cursor.execute(f"VACUUM ANALYZE {table}")

    tag = Tag.objects.create(slug="big-spenders-30d", name="Big spenders 30 days", kind="rule")
    version = TagVersion.objects.create(tag=tag, number=1, definition=RULE, depends_on=[])
    Tag.objects.filter(pk=tag.pk).update(current_version=version, rollout_percent=100)
    members: set[tuple] = set()

    def rebuilds(what: str) -> float:
        times = []
        for _ in range(args.reps):
            TagMembership.objects.filter(tag=tag).delete()
            build = TagBuild.objects.create(tag=tag, version=version, rollout_percent=100, as_of=now)
            started = time.perf_counter()
            build = services.tag_build_run(build=build, queue_dependents=False)
            times.append(time.perf_counter() - started)
            found = frozenset(TagMembership.objects.filter(tag=tag).values_list("customer_id", flat=True))
            members.add(found)
        median = statistics.median(times)
        print(
            f"rebuild over {what}: median {median:.3f}s of {[round(t, 3) for t in times]}, "
            f"{build.members} members, status {build.status}; {load()}"
        )
        return median

    started = time.perf_counter()
    with customers_file(directory, args.customers).open("rb") as upload:
        importers.import_customers(upload)
    print(f"customers: {args.customers} in {time.perf_counter() - started:.1f}s")
    files = [
        events_file(directory, args.customers, args.events_per_year, year, now) for year in range(args.years)
    ]
    rate = run_import(files[0], "events, the last year (first load)")
    vacuum()
    one_year = rebuilds("one year")
    rates = [run_import(path, f"events, year -{year}") for year, path in enumerate(files[1:], start=1)]
    started = time.perf_counter()
    moved = partitions.maintain()[
        "created"
    ]  # what the beat would do: rows of a smaller load into their months
    print(f"partition upkeep: {len(moved)} months made in {time.perf_counter() - started:.1f}s")
    vacuum()
    every_year = rebuilds(f"{args.years} years")
    with connection.cursor() as cursor:
        count = len(partitions.month_partitions(cursor))
        cursor.execute("SELECT count(*) FROM crm_tags_event")
        events = cursor.fetchone()[0]
    fanned = ""
    if args.fanout_parts:
        # the ranges run one after another in this process (Celery eager): the figure is the overhead of
        # splitting and joining on one machine, not the gain of several workers
        from django.test import override_settings

        from crm_tags import tasks

        times = []
        for _ in range(args.reps):
            TagMembership.objects.filter(tag=tag).delete()
            with override_settings(TAG_FANOUT_MIN_CUSTOMERS=0, TAG_FANOUT_PARTS=args.fanout_parts):
                build = TagBuild.objects.create(tag=tag, version=version, rollout_percent=100, as_of=now)
                started = time.perf_counter()
                tasks.run_tag_build(build.pk)
                times.append(time.perf_counter() - started)
            build.refresh_from_db()
            members.add(
                frozenset(TagMembership.objects.filter(tag=tag).values_list("customer_id", flat=True))
            )
        fanout_s = statistics.median(times)
        print(
            f"rebuild over {args.fanout_parts} customer-id ranges: median {fanout_s:.3f}s of "
            f"{[round(t, 3) for t in times]}, {build.members} members, status {build.status}; {load()}"
        )
        fanned = f" rebuild_fanout_s={fanout_s:.3f} fanout_ratio={fanout_s / every_year:.2f}"
    plain = ""
    if args.plain:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            partitions.convert_back(cursor, progress=lambda message: None)
        print(f"converted back to one plain table in {time.perf_counter() - started:.1f}s")
        vacuum()
        plain = f" rebuild_plain_s={rebuilds(f'{args.years} years, unpartitioned'):.3f}"
    assert len(members) == 1, "the rebuilds' memberships differ"
    print(f"end: {load()}")
    print(
        f"import_rows_per_s={min([rate, *rates]):.0f} rebuild_1y_s={one_year:.3f} rebuild_all_s={every_year:.3f} "
        f"ratio={every_year / one_year:.2f}{fanned}{plain} partitions={count} events={events}"
    )


if __name__ == "__main__":
    main()
