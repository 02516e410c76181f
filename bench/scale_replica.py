"""A dashboard endpoint's latency with replica routing on and off, in the same run (docs/benchmarks.md).

Starts a private primary and a streaming standby (initdb, pg_basebackup -R, pg_ctl; the helpers of
tests/scaling), migrates a bench database on the primary (replication carries it), files --tickets
requests, then times `GET /api/v1/analytics/support/?refresh=1` (every chart recomputed) as a manager,
alternating routing on (the `replica` alias configured: figures read from the standby after its lag
check) and off (no replica: the primary), so both see the same machine load. Stops both clusters.

    .venv/bin/python bench/scale_replica.py --tickets 300 --requests 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdb import bench_database_setup  # noqa: E402
from tests.scaling.postgres_cluster import start_streaming_pair, wait_for  # noqa: E402

NAME = "martech_bench_scale_replica"
URL = "/api/v1/analytics/support/?refresh=1"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    pair = start_streaming_pair(lambda primary, database: None, NAME)
    try:
        os.environ["BENCH_PG"] = f"postgres://postgres@127.0.0.1:{pair.primary.port}"
        os.environ["DATABASE_REPLICA_URL"] = f"postgres://postgres@127.0.0.1:{pair.standby.port}/{NAME}"
        bench_database_setup(NAME, keep=True, redis_db=13)
        run(pair, args)
    finally:
        from django.db import connections

        connections.close_all()
        pair.stop()


def run(pair, args: argparse.Namespace) -> None:
    from django.db import connections
    from django.test import Client

    from accounts.services import user_create
    from config import db_router
    from tickets import services

    requester = user_create(
        username="bench-req", role="requester", team_name="E-commerce ops", password="pw-bench-req-1"
    )
    manager = user_create(
        username="bench-boss", role="manager", team_name="MarTech support", password="pw-bench-boss-1"
    )
    started = time.monotonic()
    for i in range(args.tickets):
        services.ticket_create(
            requester=requester,
            title=f"Bench request {i}",
            description="Numbers for the dashboard.",
            type="data_support",
            urgency=("urgent", "routine", "planned")[i % 3],
        )
    print(f"filed {args.tickets} tickets in {time.monotonic() - started:.1f}s")
    wait_for(pair.caught_up, "the standby to catch up", timeout=300)

    replica_settings = connections.settings[db_router.REPLICA_ALIAS]

    def routing(on: bool) -> None:
        # the replica's connection stays open across switches (CONN_MAX_AGE), as in a steady web process
        if on:
            connections.settings[db_router.REPLICA_ALIAS] = replica_settings
        else:
            connections.settings.pop(db_router.REPLICA_ALIAS, None)

    client = Client()
    client.force_login(manager)
    times: dict[bool, list[float]] = {True: [], False: []}
    sources: dict[bool, set[str]] = {True: set(), False: set()}
    lags: list[float] = []
    for on in (True, False):  # warm-up, one each
        routing(on)
        assert client.get(URL).status_code == 200
    for i in range(args.requests * 2):
        on = i % 2 == 0
        routing(on)
        begun = time.perf_counter()
        response = client.get(URL)
        times[on].append((time.perf_counter() - begun) * 1000)
        body = response.json()
        sources[on].add(body["data_source"])
        if body["replica_lag_seconds"] is not None:
            lags.append(body["replica_lag_seconds"])
    routing(True)
    for on, label in ((True, "replica routing on"), (False, "replica routing off")):
        values = times[on]
        print(
            f"{label}: n={len(values)} p50 {statistics.median(values):.1f} ms, p95 {p95(values):.1f} ms,"
            f" sources {sorted(sources[on])}"
        )
    print(f"replica lag seen: max {max(lags) if lags else 0:.3f} s")
    print(
        f"ratio_p95_on_off={p95(times[True]) / p95(times[False]):.2f} p95_on_ms={p95(times[True]):.1f}"
        f" p95_off_ms={p95(times[False]):.1f} tickets={args.tickets} load={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
