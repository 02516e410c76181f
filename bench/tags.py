"""Benchmark of CRM tags: import rate, rebuild and preview of a rule, the floor, and a naive baseline.

    python bench/tags.py [--customers 1000000] [--events 20000000] [--slice 10000] [--keep] [--files DIR]
                         [--incremental 20000] [--threads 4]

Runs in its own database (martech_bench_tags or --database, recreated and migrated; with --keep one that
already holds the data is reused and the import is skipped). --files DIR keeps the generated CSV files
there and reuses them on the next run with the same sizes. Events span a year: 80 % page
views, 20 % orders. The rule is "page_view count >= 5 in 30 days AND avg order amount >= 200".
After the bulk load, imports through the ranks' trigger (the path of an everyday import): one file of
--incremental events, best of 3, rolled back; then --threads files of --incremental / --threads events
each for the same 250 new customers, committed at once (the errors are counted and the ranks compared
with a recount), whose customers and events are then removed, so a kept database stays as it was.
Ends with one line: import_rows_per_s=… rebuild_s=… preview_s=… floor_s=… ratio=… naive_s=…
incremental_rows_per_s=… concurrent_s=… concurrent_errors=…
"""

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from benchdb import bench_database_setup

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "martech_bench_tags"
RULE = {
    "all": [
        {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 5},
        {"event": "order", "agg": "avg", "field": "amount", "op": ">=", "value": 200},
    ]
}


def setup_database(keep: bool, name: str = DB_NAME) -> bool:
    """Own database (recreated unless kept), migrated, Django set up; whether a kept one existed."""
    return bench_database_setup(name, keep=keep, redis_db=3)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_files(directory: Path, customers: int, events: int, now: datetime) -> tuple[Path, Path]:
    rng = random.Random(7)
    cust_path = directory / "customers.csv"
    with cust_path.open("w") as out:
        out.write("external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n")
        cities = ["Shanghai", "Beijing", "Shenzhen", "Hangzhou"]
        for i in range(customers):
            out.write(
                f"B{i},Name {i},p{i}@example.com,138{i:08d},{cities[i % 4]},f,1990-01-01,2025-01-01,web\n"
            )
    ev_path = directory / "events.csv"
    year = 365 * 86400
    with ev_path.open("w") as out:
        out.write("customer_external_id,event_type,occurred_at,amount,channel\n")
        lines = []
        for _ in range(events):
            c = rng.randrange(customers)
            at = (now - timedelta(seconds=rng.randrange(year))).isoformat()
            if rng.random() < 0.8:
                lines.append(f"B{c},page_view,{at},,web\n")
            else:
                lines.append(f"B{c},order,{at},{rng.randint(10, 400)}.{rng.randint(0, 99):02d},app\n")
            if len(lines) >= 100_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
    return cust_path, ev_path


def incremental_imports(now: datetime, customers: int, rows: int, threads: int) -> tuple[float, float, int]:
    """(rows/s of one import through the ranks' trigger, best of 3, rolled back; seconds of `threads`
    committed imports at once for the same 250 new customers; how many of those failed). The
    concurrent imports' ranks are compared with a recount, then their customers and events removed."""
    import io
    import threading

    from django.db import connection, transaction

    from crm_tags import importers

    def events_csv(rng: random.Random, count: int, prefix: str, among: int) -> bytes:
        lines = ["customer_external_id,event_type,occurred_at,amount,channel"]
        for _ in range(count):
            at = (now - timedelta(seconds=rng.randrange(30 * 86400))).isoformat()
            lines.append(f"{prefix}{rng.randrange(among)},page_view,{at},,web")
        return ("\n".join(lines) + "\n").encode()

    rng = random.Random(11)
    single = []
    for _ in range(3):
        data = events_csv(rng, rows, "B", customers)
        started = time.perf_counter()
        with transaction.atomic():
            importers.import_events(io.BytesIO(data))
            transaction.set_rollback(True)
        single.append(time.perf_counter() - started)
        print(f"incremental import through the trigger: {rows} rows in {single[-1]:.3f}s (rolled back)")

    header = "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n"
    with transaction.atomic():
        importers.import_customers(io.StringIO(header + "".join(f"Z{i},z,,,,,,,\n" for i in range(250))))
    files = [events_csv(rng, rows // threads, "Z", 250) for _ in range(threads)]
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(data: bytes) -> None:
        try:
            barrier.wait(timeout=60)
            with transaction.atomic():
                importers.import_events(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - counted and printed, the bench goes on
            errors.append(exc)
        finally:
            connection.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(data,)) for data in files]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    concurrent_s = time.perf_counter() - started
    mine = "SELECT id FROM crm_tags_customer WHERE external_id LIKE 'Z%'"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM crm_tags_eventrank WHERE customer_id IN ({mine})), "  # noqa: S608
            "(SELECT count(*) FROM crm_tags_eventrank r WHERE customer_id IN ("
            f"{mine}) AND r.occurred_at IS DISTINCT FROM (SELECT e.occurred_at FROM crm_tags_event e "
            "WHERE e.customer_id = r.customer_id AND e.event_type = r.event_type "
            "ORDER BY e.occurred_at DESC OFFSET r.k - 1 LIMIT 1))"
        )
        ranked, wrong = cursor.fetchone()
        for table in ("crm_tags_event", "crm_tags_customereventtotal", "crm_tags_eventrank"):
            cursor.execute(f"DELETE FROM {table} WHERE customer_id IN ({mine})")  # noqa: S608
        cursor.execute("DELETE FROM crm_tags_customer WHERE external_id LIKE 'Z%'")
    print(
        f"{threads} concurrent imports of {rows // threads} rows each for the same 250 customers: "
        f"{concurrent_s:.3f}s, {len(errors)} failed {[str(e).splitlines()[0][:100] for e in errors]}; "
        f"{ranked} ranks of theirs, {wrong} differing from a recount"
    )
    return rows / min(single), concurrent_s, len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--slice", type=int, default=10_000, help="customers in the naive ORM baseline slice")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the database when it exists and holds the data (the import is then skipped)",
    )
    parser.add_argument("--files", help="directory that keeps the generated CSV files for reuse")
    parser.add_argument("--incremental", type=int, default=20_000, help="events of the trigger-path imports")
    parser.add_argument("--threads", type=int, default=4, help="concurrent trigger-path imports")
    parser.add_argument(
        "--database", default=DB_NAME, help="the database's name (another bench may reuse it)"
    )
    args = parser.parse_args()
    kept = setup_database(args.keep, args.database)

    from django.db import connection, transaction
    from django.db.models import Avg

    from crm_tags import importers, ranks, selectors, services, tasks
    from crm_tags.models import Customer, Event, Tag, TagBuild, TagMembership, TagVersion

    print(f"start: {load()}")
    # the tag exists before the import, as it would: the import keeps the ranks its rule drives from
    Tag.objects.filter(slug="high-potential").update(current_version=None)  # a kept database's run
    Tag.objects.filter(slug="high-potential").delete()
    tag = Tag.objects.create(slug="high-potential", name="High potential", kind="rule")
    version = TagVersion.objects.create(tag=tag, number=1, definition=RULE, depends_on=[])
    Tag.objects.filter(pk=tag.pk).update(current_version=version, rollout_percent=100)
    started = time.perf_counter()
    added, dropped = ranks.sync()
    print(f"ranks: {added} pairs registered, {dropped} dropped, in {time.perf_counter() - started:.2f}s")
    if kept and Customer.objects.count() == args.customers and Event.objects.count() == args.events:
        with connection.cursor() as cursor:
            cursor.execute("SELECT max(occurred_at) FROM crm_tags_event")
            now = cursor.fetchone()[0]
        import_rate = 0.0
        print("kept database with the data: import skipped")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(args.files or tmp)
            directory.mkdir(parents=True, exist_ok=True)
            stamp = directory / f"tags-{args.customers}-{args.events}.now"
            started = time.perf_counter()
            if args.files and stamp.exists():
                now = datetime.fromisoformat(stamp.read_text().strip())
                cust_path, ev_path = directory / "customers.csv", directory / "events.csv"
                print(f"reusing the CSV files in {directory}")
            else:
                now = datetime.now(UTC).replace(microsecond=0)
                cust_path, ev_path = write_files(directory, args.customers, args.events, now)
                stamp.write_text(now.isoformat())
                print(f"generated CSV files in {time.perf_counter() - started:.1f}s")
            started = time.perf_counter()
            with cust_path.open("rb") as handle, transaction.atomic():
                importers.import_customers(handle)
            cust_s = time.perf_counter() - started
            print(
                f"customers: {args.customers} rows in {cust_s:.2f}s ({args.customers / cust_s:,.0f} rows/s)"
            )
            # the key validations a bulk load queues after its commit run in the worker, not in the
            # import: collected here and timed on their own
            queued: list[tuple] = []
            started = time.perf_counter()
            with (
                mock.patch.object(tasks.validate_constraint, "delay", lambda *a: queued.append(a)),
                ev_path.open("rb") as handle,
                transaction.atomic(),
            ):
                importers.import_events(handle)
            ev_s = time.perf_counter() - started
            import_rate = args.events / ev_s
            print(
                f"events: {args.events} rows in {ev_s:.2f}s ({import_rate:,.0f} rows/s, totals and ranks "
                f"updated in the same transaction, committed; {load()})"
            )
            started = time.perf_counter()
            for table, name in queued:
                services.constraint_validate(table=table, name=name)
            print(
                f"after commit, in the worker: {len(queued)} keys validated in {time.perf_counter() - started:.2f}s"
            )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE crm_tags_event")
        cursor.execute("VACUUM ANALYZE crm_tags_customereventtotal")
        cursor.execute("VACUUM ANALYZE crm_tags_customer")
        cursor.execute("VACUUM ANALYZE crm_tags_eventrank")
    print(f"vacuum analyze: {time.perf_counter() - started:.2f}s")
    incremental_rate, concurrent_s, concurrent_errors = incremental_imports(
        now, args.customers, args.incremental, args.threads
    )

    def rebuild() -> tuple[float, TagBuild]:
        build = TagBuild.objects.create(tag=tag, version=version, rollout_percent=100, as_of=now)
        t0 = time.perf_counter()
        build = services.tag_build_run(build=build, queue_dependents=False)
        return time.perf_counter() - t0, build

    # Each figure is the best of 3 runs, like the floor's (the first run of each reads pages the
    # VACUUM pushed out of shared buffers; it is printed too). Every rebuild starts from an empty
    # membership, so each one writes the whole membership and its history rows.
    rebuilds = []
    for _ in range(3):
        TagMembership.objects.filter(tag=tag).delete()
        seconds, build = rebuild()
        rebuilds.append(seconds)
        print(
            f"rebuild (empty -> full membership): {seconds:.3f}s, {build.members} members, "
            f"+{build.entered} -{build.exited}, status {build.status} {build.error}"
        )
    rebuild_s = min(rebuilds)
    again_s, build2 = rebuild()
    print(f"rebuild (steady state, no change): {again_s:.3f}s, +{build2.entered} -{build2.exited}")

    previews = []
    for _ in range(3):
        t0 = time.perf_counter()
        preview = selectors.tag_preview(tag=tag, definition=RULE, user=None, as_of=now)  # type: ignore[arg-type]
        previews.append(time.perf_counter() - t0)
        print(
            f"preview: {previews[-1]:.3f}s, matched {preview.matched} of {preview.total}, "
            f"enter {preview.enter} exit {preview.exit}"
        )
    preview_s = min(previews)

    start = now - timedelta(days=30)
    floors = []
    for _ in range(3):
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM crm_tags_event WHERE event_type = 'page_view' AND occurred_at > %s AND occurred_at <= %s",
                [start, now],
            )
            window_rows = cursor.fetchone()[0]
        floors.append(time.perf_counter() - t0)
    floor_s = min(floors)
    print(f"floor: count(*) of the {window_rows} page views in the 30-day window: {floor_s:.3f}s")

    ids = list(Customer.objects.order_by("id").values_list("id", flat=True)[: args.slice])
    t0 = time.perf_counter()
    naive_matches = 0
    for cid in ids:
        views = Event.objects.filter(
            customer_id=cid, event_type="page_view", occurred_at__gt=start, occurred_at__lte=now
        ).count()
        avg = Event.objects.filter(
            customer_id=cid, event_type="order", occurred_at__lte=now, amount__isnull=False
        ).aggregate(a=Avg("amount"))["a"]
        naive_matches += views >= 5 and avg is not None and avg >= 200
    slice_s = time.perf_counter() - t0
    naive_s = slice_s * args.customers / max(len(ids), 1)
    print(
        f"naive ORM: {len(ids)} customers in {slice_s:.2f}s ({naive_matches} matches), extrapolated {naive_s:.1f}s"
    )

    ratio = rebuild_s / floor_s if floor_s else float("inf")
    print(f"end: {load()}")
    print(
        f"import_rows_per_s={import_rate:.0f} rebuild_s={rebuild_s:.3f} preview_s={preview_s:.3f} "
        f"floor_s={floor_s:.3f} ratio={ratio:.2f} naive_s={naive_s:.1f} "
        f"incremental_rows_per_s={incremental_rate:.0f} concurrent_s={concurrent_s:.3f} "
        f"concurrent_errors={concurrent_errors}"
    )


if __name__ == "__main__":
    main()
