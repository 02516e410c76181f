"""Benchmark of the journeys engine (issue 20): N customers enter a tag in one build, all are enrolled and
their first step (a webhook) delivered, batched, to a local receiver; then the tick with N enrolments
waiting and nothing due.

    python bench/journeys.py [--customers 1000000] [--batch-size 1000] [--engine-batch 5000] [--engine-workers 1]
                             [--ticks 20]
                             [--idle-only]

Uses its own database (martech_bench_journeys). Generates N customers in Postgres, a manual tag and a
journey "on entering the tag: webhook" (reentry never, 100 %, no holdout) to a destination whose receiver
the bench starts on loopback in a separate process (it checks every request's signature and counts each
item's idempotency key). Then, timed from the build's start:

1. the build: all N customers enter the tag (`tag_members_change`, one build);
2. admission: the journey reads the build (`admit_tag_triggers`: one INSERT … SELECT);
3. steps: `engine.run_due` until nothing is due (the webhook step writes N deliveries), in --engine-workers
   processes at once (each with its own connection, as that many journeys workers: SKIP LOCKED claims);
4. delivery: `delivery.send_due` until every request is sent (requests of --batch-size items).

Checks that the receiver saw N distinct keys, none twice, all signatures right. Then part two: N enrolments
of a second journey waiting 10 days (inserted directly), and the whole beat tick (`journeys.tasks.tick`'s
body: tag and time admission, the event pass, the claim, deliveries) timed --ticks times with nothing due.

`BENCH_PROFILE=1` prints a cProfile of the first 10 engine batches of part one (`BENCH_PROFILE_SORT=tottime`
to sort by own time); `BENCH_SQL=1` prints every statement of the steps over 20 ms and each `send_due`'s
time. Celery's task modules are imported before the clock starts, as a worker has them.

Ends with one line: build_s=… admit_s=… steps_s=… deliver_s=… total_s=… customers=… engine_workers=… delivered=…
duplicates=… bad_signatures=… tick_median_ms=… tick_max_ms=… claim_median_ms=…
"""

import argparse
import hashlib
import hmac
import json
import multiprocessing
import os
import statistics
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH), str(BENCH)]

from benchdb import bench_database_setup  # noqa: E402

DB_NAME = "martech_bench_journeys"
SECRET = "bench-secret"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the receiver (its own process: its work does not share the engine's interpreter) ---------------------


def _receiver_main(port_out: multiprocessing.Queue) -> None:
    seen: set[str] = set()
    stats = {"requests": 0, "items": 0, "duplicates": 0, "bad_signatures": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, self.headers.get("X-Hub-Signature-256", "")):
                stats["bad_signatures"] += 1
                self.send_response(401)
            else:
                stats["requests"] += 1
                for item in json.loads(raw)["deliveries"]:
                    key = item["idempotency_key"]
                    if key in seen:
                        stats["duplicates"] += 1
                    seen.add(key)
                    stats["items"] += 1
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({**stats, "distinct": len(seen)}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


def receiver_start() -> tuple[multiprocessing.Process, str]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=_receiver_main, args=(queue,), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{queue.get(timeout=30)}"


def receiver_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stats", timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


# --- the data ----------------------------------------------------------------------------------------------


def generate(customers: int) -> None:
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_tags_customer (external_id, name, email, phone, attributes, created_at, updated_at) "
            "SELECT 'C' || g, '', '', '', '{}', now(), now() FROM generate_series(1, %s) g",
            [customers],
        )
        cursor.execute("ANALYZE crm_tags_customer")
    print(f"generated {customers} customers: {time.perf_counter() - started:.1f}s")


def setup(receiver_url: str, batch_size: int) -> tuple:
    from accounts.models import User
    from crm_tags import services as tag_services
    from journeys import services

    owner, _ = User.objects.get_or_create(
        username="bench-manager", defaults={"is_superuser": True, "is_staff": True}
    )
    tag = tag_services.tag_create(slug="bench-vip", name="Bench VIP", kind="manual", category="", by=None)
    destination = services.destination_create(
        by=owner,
        name="bench receiver",
        kind="webhook",
        url=f"{receiver_url}/hook",
        secret=SECRET,
        batch_size=batch_size,
    )
    journey = services.journey_create(
        by=owner,
        name="Bench: welcome webhook",
        trigger={"kind": "tag_entered", "tag": tag.slug},
        entry={"reentry": "never"},
        steps=[{"action": "webhook", "destination": destination.pk, "template": {"offer": "WB10"}}],
    )
    services.journey_activate(journey=journey, by=owner, percent=100)
    waiting = services.journey_create(
        by=owner,
        name="Bench: waiting",
        trigger={"kind": "tag_entered", "tag": tag.slug},
        entry={"reentry": "never"},
        steps=[{"wait": {"days": 10}}],
    )
    return owner, tag, journey, waiting


def _engine_process(engine_batch: int, done: multiprocessing.Queue) -> None:
    """One engine worker: run due batches until none is due (SKIP LOCKED shares them out)."""
    from django.db import connection

    from journeys import engine

    ran = 0
    try:
        while True:
            batch = engine.run_due(batch_size=engine_batch, max_batches=100)
            ran += batch
            if batch == 0:
                break
    finally:
        connection.close()
        done.put(ran)


def steps_in_processes(workers: int, engine_batch: int) -> int:
    """The steps run by `workers` processes at once, as that many journeys workers would (each with its own
    database connection; forked after this process closed its own)."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    done: multiprocessing.Queue = context.Queue()
    processes = [context.Process(target=_engine_process, args=(engine_batch, done)) for _ in range(workers)]
    for process in processes:
        process.start()
    ran = sum(done.get(timeout=3600) for _ in processes)
    for process in processes:
        process.join(60)
        if process.exitcode != 0:
            raise SystemExit(f"an engine process failed (exit code {process.exitcode})")
    return ran


def enrol_and_deliver(tag, customers: int, engine_batch: int, engine_workers: int, receiver_url: str) -> dict:
    from django.db import connection

    from crm_tags.manual_members import tag_members_change
    from journeys import admission, delivery, engine

    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM crm_tags_customer")
        ids = cursor.fetchone()[0]
    figures = {}
    # the build's wake-up (post_save → journeys.tasks.tag_build_done) would run every phase inside the
    # build here (CELERY_TASK_ALWAYS_EAGER); it is switched off so that each phase is timed on its own
    from django.db.models.signals import post_save

    from crm_tags.models import TagBuild

    post_save.disconnect(sender=TagBuild, dispatch_uid="journeys-tag-build-done")
    # a Celery worker imports every app's tasks when it starts; here the first `enqueue` would do it inside
    # the timed steps (2-8 s, with Django's checks and every URLconf): do it before, as a worker would have
    from config.task_queue import registered_task

    registered_task("journeys.tasks.send_deliveries")
    started = time.perf_counter()
    build = tag_members_change(tag=tag, add=ids)
    figures["build_s"] = time.perf_counter() - started
    print(f"build: {build.entered} entered, {figures['build_s']:.1f}s ({load()})")

    mark = time.perf_counter()
    admitted = admission.admit_tag_triggers(tag_id=tag.pk)
    figures["admit_s"] = time.perf_counter() - mark
    print(f"admission: {admitted} enrolled, {figures['admit_s']:.1f}s")

    mark = time.perf_counter()
    ran = 0
    if os.environ.get("BENCH_SQL"):  # every statement of the steps over 20 ms, with its time
        from django.db import connection as conn

        def timed(execute, sql, params, many, context):
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                took = time.perf_counter() - began
                if took > 0.02:
                    print(f"    sql {took * 1000:.0f} ms: {' '.join(sql.split())[:110]}")

        conn.execute_wrappers.append(timed)
        from config import binary_sql as bulk

        class TimedCursor:  # the same for the bulk statements' own cursors
            def __init__(self, cursor):
                self.cursor = cursor

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.cursor.close()

            def __getattr__(self, name):
                return getattr(self.cursor, name)

            def execute(self, sql, params=None):
                return timed(lambda *a: self.cursor.execute(sql, params), sql, params, False, None)

        plain = bulk.cursor
        bulk.cursor = lambda: TimedCursor(plain())
        from journeys import delivery as sender

        send_due = sender.send_due

        def send_timed(**kwargs):
            began = time.perf_counter()
            try:
                return send_due(**kwargs)
            finally:
                print(f"    send_due {(time.perf_counter() - began) * 1000:.0f} ms")

        sender.send_due = send_timed
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        ran += engine.run_due(batch_size=engine_batch, max_batches=10)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(45)
    if engine_workers > 1:
        ran += steps_in_processes(engine_workers, engine_batch)
    while True:
        done = engine.run_due(batch_size=engine_batch, max_batches=100)
        ran += done
        if done == 0:
            break
        print(f"  steps: {ran} enrolments, {time.perf_counter() - mark:.0f}s")
    figures["steps_s"] = time.perf_counter() - mark
    print(f"steps: {ran} enrolments ran their first step, {figures['steps_s']:.1f}s ({load()})")

    mark = time.perf_counter()
    while True:
        sent = delivery.send_due()
        stats = receiver_stats(receiver_url)
        if stats["distinct"] >= admitted or not sent["requests_tried"]:
            break
        print(f"  delivered {stats['distinct']} items, {time.perf_counter() - mark:.0f}s")
    figures["deliver_s"] = time.perf_counter() - mark
    figures["total_s"] = time.perf_counter() - started
    stats = receiver_stats(receiver_url)
    print(
        f"delivery: {stats['distinct']} keys in {stats['requests']} requests, {figures['deliver_s']:.1f}s "
        f"({load()})"
    )
    figures.update(
        delivered=stats["distinct"],
        duplicates=stats["duplicates"],
        bad_signatures=stats["bad_signatures"],
        enrolled=admitted,
    )
    return figures


def idle_tick(waiting, customers: int, ticks: int) -> dict:
    """N enrolments of `waiting` wait 10 days; the tick's cost with nothing due."""
    from django.db import connection, transaction

    from journeys import admission, delivery, engine, services, timed
    from journeys.models import Journey

    owner = waiting.owner
    waiting = services.journey_activate(journey=Journey.objects.get(pk=waiting.pk), by=owner, percent=100)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO journeys_enrolment (journey_id, version_id, customer_id, trigger_ref, holdout, state, "
            "step, step_started_at, wait_deadline, wait_event, next_at, entered_at, exit_reason) "
            "SELECT %s, %s, c.id, 'bench', false, 'active', '0', now(), now() + interval '10 days', '', "
            "now() + interval '10 days' - (c.id %% 1000) * interval '1 second', now(), '' "
            "FROM crm_tags_customer c",
            [waiting.pk, waiting.active_version_id],
        )
        cursor.execute("ANALYZE journeys_enrolment")
    print(f"{customers} enrolments waiting: {time.perf_counter() - started:.1f}s")

    with connection.cursor() as cursor:
        # what autovacuum does on a live system: part one's updated rows leave dead entries in the
        # partial "due" index that the claim would step over
        cursor.execute("VACUUM ANALYZE journeys_enrolment")
        cursor.execute("VACUUM ANALYZE journeys_delivery")
    parts_ms: dict[str, list[float]] = {}

    def tick() -> None:  # journeys.tasks.tick's body, each part timed
        for name, part in (
            ("tags", admission.admit_tag_triggers),
            ("timed", timed.admit_time_triggers),
            ("events", admission.process_new_events),
            ("claim", engine.run_due),
            ("send", delivery.send_due),
        ):
            mark = time.perf_counter()
            part()
            parts_ms.setdefault(name, []).append((time.perf_counter() - mark) * 1000)

    tick()  # the first pass sets the event cursor
    parts_ms.clear()
    tick_ms, claim_ms = [], []
    for _ in range(ticks):
        mark = time.perf_counter()
        tick()
        tick_ms.append((time.perf_counter() - mark) * 1000)
        mark = time.perf_counter()
        assert engine.run_due() == 0
        claim_ms.append((time.perf_counter() - mark) * 1000)
    print(f"idle tick: {[round(t, 1) for t in tick_ms]} ms ({load()})")
    print(
        "idle tick parts, median ms: "
        + " ".join(f"{k}={statistics.median(v):.1f}" for k, v in parts_ms.items())
    )
    return {
        "tick_median_ms": statistics.median(tick_ms),
        "tick_max_ms": max(tick_ms),
        "claim_median_ms": statistics.median(claim_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000, help="items per webhook request")
    parser.add_argument("--engine-batch", type=int, default=5000, help="enrolments claimed per transaction")
    parser.add_argument(
        "--engine-workers", type=int, default=1, help="processes running the steps at once (journeys workers)"
    )
    parser.add_argument("--ticks", type=int, default=20, help="idle ticks timed")
    parser.add_argument(
        "--idle-only", action="store_true", help="only part two: the idle tick with N enrolments waiting"
    )
    args = parser.parse_args()
    if args.customers < 1:
        parser.error("--customers must be positive")
    # the receiver is on loopback, which webhook destinations may reach only when allowed (config/outbound.py)
    bench_database_setup(DB_NAME, redis_db=12, OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8")
    process, receiver_url = receiver_start()
    try:
        generate(args.customers)
        _owner, tag, _journey, waiting = setup(receiver_url, args.batch_size)
        print(f"start: {load()}")
        figures = dict.fromkeys(["build_s", "admit_s", "steps_s", "deliver_s", "total_s"], float("nan"))
        figures.update(enrolled=0, delivered=0, duplicates=0, bad_signatures=0)
        if not args.idle_only:
            figures = enrol_and_deliver(
                tag, args.customers, args.engine_batch, args.engine_workers, receiver_url
            )
        figures.update(idle_tick(waiting, args.customers, args.ticks))
    finally:
        process.terminate()
    print(f"end: {load()}")
    print(
        " ".join(
            [
                f"build_s={figures['build_s']:.2f}",
                f"admit_s={figures['admit_s']:.2f}",
                f"steps_s={figures['steps_s']:.2f}",
                f"deliver_s={figures['deliver_s']:.2f}",
                f"total_s={figures['total_s']:.2f}",
                f"customers={args.customers}",
                f"engine_workers={args.engine_workers}",
                f"enrolled={figures['enrolled']}",
                f"delivered={figures['delivered']}",
                f"duplicates={figures['duplicates']}",
                f"bad_signatures={figures['bad_signatures']}",
                f"tick_median_ms={figures['tick_median_ms']:.1f}",
                f"tick_max_ms={figures['tick_max_ms']:.1f}",
                f"claim_median_ms={figures['claim_median_ms']:.2f}",
            ]
        )
    )


if __name__ == "__main__":
    main()
