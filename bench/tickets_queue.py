"""Benchmark of the support queue: p50/p95 of the queue page and the list endpoint on many tickets.

    python bench/tickets_queue.py [--tickets 200000] [--rounds 30] [--keep]

Runs in its own database (martech_bench_tickets, recreated and migrated unless --keep finds it filled).
Tickets are written set-based (INSERT … SELECT generate_series): six months, ~12 % open, four teams,
three agents. Each round requests every common filter once as an agent, through the whole Django stack
(middleware, session, templates / serializers) with the test client.
Also reports the web process's own CPU per request (p50) and the load average: on a shared machine the
wall-clock figures mostly measure the wait for a CPU.
Ends with one line: tickets=… queue_p50_ms=… queue_p95_ms=… api_p50_ms=… api_p95_ms=… queue_cpu_p50_ms=…
api_cpu_p50_ms=… load=…
"""

import argparse
import os
import statistics
import time
from pathlib import Path

from benchdb import bench_database_setup

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "martech_bench_tickets"
QUEUE_FILTERS = [
    "",
    "?urgency=urgent",
    "?assignee=me",
    "?sla_state=breached",
    "?sla_state=at_risk,breached&urgency=urgent",
    "?type=incident&status=in_progress",
    "?team={team}",
    "?q=wechat+pay+%231234",
    "?q=MT-150000",
    "?status=done",
]
API_FILTERS = [
    "?status=open",
    "?status=open&urgency=urgent",
    "?assignee=me&status=open",
    "?sla_state=breached&status=open",
    "?team={team}&status=open",
    "?q=wechat+pay+%231234&status=open",
    "",
]


def setup_database(keep: bool) -> bool:
    """Own database (recreated unless kept), migrated, Django set up."""
    bench_database_setup(DB_NAME, keep=keep, redis_db=2)
    from tickets.models import Ticket

    return keep and Ticket.objects.exists()


def seed(count: int) -> None:
    """People through the services; tickets set-based in SQL (seconds for 200,000)."""
    from django.db import connection

    from accounts.models import Team
    from accounts.services import user_create

    Team.objects.update_or_create(name="MarTech support", defaults={"is_support": True})
    teams = ["E-commerce ops", "Brand marketing", "Content", "CRM ops"]
    for index, team in enumerate(teams):
        user_create(username=f"req{index}", role="requester", team_name=team, password="bench-pass-1")
    for name in ("agent", "agent2", "agent3"):
        user_create(username=name, role="agent", team_name="MarTech support", password="bench-pass-1")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH base AS (
              SELECT g,
                     now() - (random() * interval '180 days') AS created,
                     (ARRAY['system_config','data_support','incident','feature','consultation'])[1 + g %% 5] AS type,
                     (ARRAY['urgent','routine','routine','routine','planned'])[1 + (g / 7) %% 5] AS urgency,
                     CASE WHEN random() < 0.12
                          THEN (ARRAY['new','triaged','analysis','in_progress','waiting_on_requester','testing',
                                      'awaiting_acceptance'])[1 + (g / 3) %% 7]
                          ELSE (ARRAY['closed','closed','closed','resolved','rejected','cancelled'])[1 + (g / 3) %% 6]
                     END AS status,
                     (SELECT id FROM accounts_user WHERE username = 'req' || (g %% 4)) AS requester_id,
                     (SELECT id FROM accounts_user WHERE username = (ARRAY['agent','agent2','agent3'])[1 + g %% 3])
                        AS agent_id
              FROM generate_series(1, %s) AS g
            )
            INSERT INTO tickets_ticket (
              key, number, title, description, type, urgency, status, previous_status, channel,
              requester_id, team_id, assignee_id, feasibility, feasibility_note, is_complex,
              created_at, updated_at, first_response_at, resolved_at, closed_at,
              first_response_due, resolution_due, first_response_risk_at, resolution_risk_at,
              sla_due, sla_state, sla_alert_at, sla_paused_seconds)
            SELECT 'MT-' || (100000 + g), 100000 + g,
                   (ARRAY['Checkout fails for WeChat Pay','Export orders by city','Coupon stacking rules',
                          'Banner rotation','Referral programme','Weekly GMV report'])[1 + g %% 6] || ' #' || g,
                   'Bench ticket', type, urgency, status, '', 'web',
                   requester_id, (SELECT team_id FROM accounts_user WHERE id = requester_id),
                   CASE WHEN status = 'new' THEN NULL ELSE agent_id END,
                   '', '', false,
                   created, created + interval '1 hour',
                   CASE WHEN status = 'new' THEN NULL ELSE created + interval '20 minutes' END,
                   CASE WHEN status IN ('resolved','closed') THEN created + interval '2 days' END,
                   CASE WHEN status = 'closed' THEN created + interval '3 days' END,
                   created + CASE urgency WHEN 'urgent' THEN interval '30 minutes' ELSE interval '4 hours' END,
                   created + CASE urgency WHEN 'urgent' THEN interval '2 hours' WHEN 'routine' THEN interval '3 days'
                                          ELSE interval '20 days' END,
                   created + interval '24 minutes', created + interval '1 day',
                   CASE WHEN status IN ('resolved','closed','rejected','cancelled') THEN NULL
                        WHEN status = 'new' THEN created + interval '30 minutes'
                        ELSE created + interval '3 days' END,
                   CASE WHEN status = 'waiting_on_requester' THEN 'paused'
                        WHEN status IN ('resolved','closed') THEN (ARRAY['met','met','met','breached'])[1 + g %% 4]
                        ELSE (ARRAY['on_track','on_track','at_risk','breached'])[1 + g %% 4] END,
                   NULL, 0
            FROM base
            """,
            [count],
        )
        cursor.execute(
            "UPDATE tickets_ticketcounter SET last_number = %s WHERE prefix = 'MT'", [100000 + count]
        )
        cursor.execute("ANALYZE tickets_ticket")
    print(f"seeded {count} tickets in {time.perf_counter() - started:.1f}s")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure(rounds: int) -> dict[str, list[float]]:
    from django.test import Client

    from accounts.models import Team, User

    agent = User.objects.get(username="agent")
    team_id = Team.objects.get(name="Brand marketing").pk
    client = Client()
    client.force_login(agent)
    timings: dict[str, list[float]] = {"queue": [], "api": [], "queue_cpu": [], "api_cpu": []}
    per_url: dict[str, list[float]] = {}
    for name, base, filters in (
        ("queue", "/requests/queue/", QUEUE_FILTERS),
        ("api", "/api/v1/tickets/", API_FILTERS),
    ):
        for query in filters:  # warm-up: connections, template and plan caches
            client.get(base + query.format(team=team_id))
        for _ in range(rounds):
            for query in filters:
                url = base + query.format(team=team_id)
                started, cpu = time.perf_counter(), time.process_time()
                response = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                timings[f"{name}_cpu"].append((time.process_time() - cpu) * 1000)
                assert response.status_code == 200, (url, response.status_code)
                timings[name].append(elapsed)
                per_url.setdefault(url, []).append(elapsed)
    for url, values in per_url.items():
        print(f"  {url:<70} p50 {statistics.median(values):6.1f} ms  p95 {percentile(values, 0.95):6.1f} ms")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="reuse the bench database when already filled")
    args = parser.parse_args()
    filled = setup_database(args.keep)
    if not filled:
        seed(args.tickets)
    from tickets.models import Ticket

    total = Ticket.objects.count()
    print(f"tickets: {total}, open: {Ticket.objects.filter(status__in=Ticket.OPEN_STATUSES).count()}")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    timings = measure(args.rounds)
    figures = {
        "tickets": total,
        "queue_p50_ms": round(statistics.median(timings["queue"]), 1),
        "queue_p95_ms": round(percentile(timings["queue"], 0.95), 1),
        "api_p50_ms": round(statistics.median(timings["api"]), 1),
        "api_p95_ms": round(percentile(timings["api"], 0.95), 1),
        "queue_cpu_p50_ms": round(statistics.median(timings["queue_cpu"]), 1),
        "api_cpu_p50_ms": round(statistics.median(timings["api_cpu"]), 1),
        "load": round(os.getloadavg()[0], 1),
    }
    print(" ".join(f"{key}={value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
