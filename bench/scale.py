"""Benchmark of events partitioned by month: a 30-day-window rule rebuilt over one year of history, then
over five, in the same run (cost should follow the window, not the history), and the events import rate
into the partitioned table.

    python bench/scale.py [--customers 5000000] [--events-per-year 20000000] [--years 5] [--reps 5]
                          [--files DIR] [--plain] [--fanout-parts N [--fanout-workers W]]

Own database (martech_bench_scale, recreated and migrated). Customers and one CSV of events per year are
generated (80 % page views, 20 % orders); --files DIR keeps the CSV files for reuse. The most recent
year is imported first (the bulk path: COPY, totals, indexes rebuilt, the months of its rows made first),
the rule ("order amount in the
last 30 days >= 300", a grouped window scan: no ranks answer it) rebuilt --reps times from an empty
membership, then the four older years are imported (a load too small for the bulk path waits in the default
partition until the upkeep, run next, moves it into its months) and the rule rebuilt again. With --plain the events
table is then converted back to one plain table (crm_tags.partitions.convert_back) and the rule rebuilt
once more: the same history unpartitioned, for comparison. With --fanout-parts N the rule is also built
over N customer-id ranges (crm_tags/fanout.py; the ranges run one after another in this process). With
--fanout-workers W as well, W real Celery workers of the `tags` queue are started (solo pool, one task
each, this bench's database and Redis), this process stops running tasks eagerly, and each build is
timed from `run_tag_build` to its row's status "done" (the ranges run side by side on the workers, the
last one applies them); the workers are stopped at the end, also on an error. Every rebuild's membership
is checked equal.
Ends with one line: import_rows_per_s=… rebuild_1y_s=… rebuild_all_s=… ratio=… [rebuild_fanout_s=…
fanout_ratio=…] [rebuild_fanout_workers_s=… fanout_workers_ratio=…] [rebuild_plain_s=…]
partitions=… events=…
(each ratio against rebuild_all_s, the single statement over every year)
"""

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchdb import ROOT, bench_database_setup

DB_NAME = "martech_bench_scale"
RULE = {"event": "order", "agg": "sum", "field": "amount", "window_days": 30, "op": ">=", "value": 300}
YEAR = 365 * 86400
WORKERS_READY_S = 120  # for the workers to answer a ping
POLL_S = 0.05  # how often a build's row is read while the workers run it


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


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _log_tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log} ---\n{log.read_text(errors='replace')[-2000:]}" for log in logs)


@contextmanager
def tags_workers(count: int, directory: Path) -> Iterator[list[subprocess.Popen]]:
    """`count` Celery workers of the tags queue on this bench's database and Redis, ready when this
    yields (each answered a ping), with this process no longer running tasks eagerly; stopped on exit."""
    from config.celery import app

    env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false"}
    names = [f"bench-scale-{os.getpid()}-{number}@{socket.gethostname()}" for number in range(count)]
    logs = [directory / f"worker-{number}.log" for number in range(count)]
    workers: list[subprocess.Popen] = []
    eager = app.conf.task_always_eager
    try:
        for name, log in zip(names, logs, strict=True):
            with log.open("wb") as out:
                workers.append(
                    subprocess.Popen(  # noqa: S603 - this venv's celery, fixed arguments
                        [
                            str(Path(sys.executable).parent / "celery"),
                            "-A",
                            "config",
                            "worker",
                            "-Q",
                            "tags",
                            "-c",
                            "1",
                            "-P",
                            "solo",
                            "--without-heartbeat",
                            "--without-gossip",
                            "--without-mingle",
                            "-n",
                            name,
                            "-l",
                            "info",
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: stopping it reaches all of it
                        preexec_fn=_die_with_parent,  # noqa: PLW1509 - no worker outlives a killed bench
                    )
                )
        # what CELERY_TASK_ALWAYS_EAGER set in this process: from now on tasks go to the broker
        app.conf.task_always_eager = False
        deadline = time.monotonic() + WORKERS_READY_S
        ready: set[str] = set()
        while not ready >= set(names):
            dead = [log for worker, log in zip(workers, logs, strict=True) if worker.poll() is not None]
            if dead:
                raise RuntimeError(f"tags worker(s) exited before they were ready: {[str(d) for d in dead]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the tags workers did not answer a ping in {WORKERS_READY_S}s (ready: {sorted(ready)})"
                )
            for reply in app.control.ping(destination=names, timeout=1.0):
                ready.update(reply)
        print(f"{count} tags workers ready; logs in {directory}")
        yield workers
    except BaseException:
        if workers:
            print(f"the tags workers' logs:\n{_log_tails(logs)}", file=sys.stderr)
        raise
    finally:
        app.conf.task_always_eager = eager
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)  # a warm shutdown: the current task ends first
        for worker in workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def build_on_workers(build_id: int, timeout: float) -> float:
    """Seconds from `run_tag_build` (here: it splits the build and sends its ranges to the workers) to
    the build's row saying done; a failed build, or one not done within `timeout`, raises."""
    from crm_tags import tasks
    from crm_tags.models import TagBuild

    started = time.perf_counter()
    tasks.run_tag_build(build_id)
    while True:
        status, error = TagBuild.objects.filter(pk=build_id).values_list("status", "error").get()
        if status == TagBuild.Status.DONE:
            return time.perf_counter() - started
        if status == TagBuild.Status.FAILED:
            raise RuntimeError(f"the fanned-out build {build_id} failed on the workers: {error}")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(
                f"the fanned-out build {build_id} was not done after {timeout:.0f}s (status {status}); "
                "are the workers stuck or gone?"
            )
        time.sleep(POLL_S)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5_000_000)
    parser.add_argument("--events-per-year", type=int, default=20_000_000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--files", help="directory that keeps the generated CSV files for reuse")
    parser.add_argument("--plain", action="store_true", help="also rebuild over the history unpartitioned")
    parser.add_argument("--fanout-parts", type=int, default=0, help="also build over N customer-id ranges")
    parser.add_argument(
        "--fanout-workers",
        type=int,
        default=0,
        help="with --fanout-parts: also build on W real Celery workers of the tags queue",
    )
    args = parser.parse_args()
    if args.fanout_workers and not args.fanout_parts:
        parser.error("--fanout-workers needs --fanout-parts (how many ranges the workers share)")
    if args.fanout_workers < 0 or args.fanout_parts < 0:
        parser.error("--fanout-parts and --fanout-workers count ranges and workers: 0 or more")
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
    if args.fanout_workers:
        from django.test import override_settings

        from crm_tags.models import TagBuildPart

        # generous: the single statement's time many times over, and a worker's start
        timeout = 300 + 50 * every_year
        times = []
        with tags_workers(args.fanout_workers, Path(tempfile.mkdtemp(prefix="bench-scale-workers-"))):
            for _ in range(args.reps):
                TagMembership.objects.filter(tag=tag).delete()
                with override_settings(TAG_FANOUT_MIN_CUSTOMERS=0, TAG_FANOUT_PARTS=args.fanout_parts):
                    build = TagBuild.objects.create(tag=tag, version=version, rollout_percent=100, as_of=now)
                    times.append(build_on_workers(build.pk, timeout))
                members.add(
                    frozenset(TagMembership.objects.filter(tag=tag).values_list("customer_id", flat=True))
                )
                parts = TagBuildPart.objects.filter(build=build).order_by("number")
                print(f"  ranges' seconds: {[round(p.seconds or 0, 3) for p in parts]}")
        build.refresh_from_db()
        workers_s = statistics.median(times)
        print(
            f"rebuild over {args.fanout_parts} customer-id ranges on {args.fanout_workers} workers: median "
            f"{workers_s:.3f}s of {[round(t, 3) for t in times]}, {build.members} members, "
            f"status {build.status}; {load()}"
        )
        fanned += (
            f" rebuild_fanout_workers_s={workers_s:.3f} fanout_workers_ratio={workers_s / every_year:.2f}"
        )
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
