"""Benchmark of analytics: every dashboard endpoint on a cold cache, and report jobs of a million rows.

    python bench/analytics.py [--tickets 200000] [--metrics 1000000] [--customers 100000] [--runs 20]
                              [--keep] [--skip-xlsx] [--xlsx-baseline]

Runs in its own database (martech_bench_analytics; recreated and migrated unless --keep finds the
data already there). All rows are generated in Postgres with INSERT ... SELECT generate_series.
Requests go through the whole Django stack (test client: auth, scoping, one aggregate query per
chart, JSON), with the cache cleared before every request. Ends with one line of name=value pairs.

The XLSX job's rows are rendered as sheet XML by Postgres (analytics/report_xlsx.py). --xlsx-baseline
also times the same job with XlsxWriter (every cell in Python; `xlsxwriter_write_xlsx` below) on the
same rows in the same run, and prints the ratio.
"""

import argparse
import statistics
import time
from pathlib import Path

from benchdb import bench_database_setup

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "martech_bench_analytics"
CHANNELS = ["wechat", "douyin", "tmall", "xiaohongshu", "baidu"]
DAYS_PER_CAMPAIGN = 200


def setup_database(keep: bool) -> bool:
    """Own database (recreated unless kept), migrated, Django set up."""
    return bench_database_setup(DB_NAME, keep=keep, redis_db=6)


def generate(tickets: int, metrics: int, customers: int) -> dict[str, float]:
    """People through the services, everything else with set-based SQL. Returns seconds per part."""
    from django.db import connection

    from accounts.models import Team
    from accounts.services import user_create

    timings: dict[str, float] = {}
    manager = user_create(
        username="bench-boss",
        role="manager",
        team_name="MarTech support",
        password="x" * 12,
        email="boss@example.com",
        pii=True,
    )
    agents = [
        user_create(
            username=f"bench-agent-{i}", role="agent", team_name="MarTech support", password="x" * 12
        ).pk
        for i in range(8)
    ]
    requesters, teams = [], []
    for i in range(5):
        user = user_create(
            username=f"bench-req-{i}", role="requester", team_name=f"Bench team {i}", password="x" * 12
        )
        requesters.append(user.pk)
        teams.append(user.team_id)
    Team.objects.filter(pk__in=teams)  # teams exist now
    with connection.cursor() as cur:
        start = time.perf_counter()
        cur.execute(
            """
            INSERT INTO tickets_ticket (key, number, title, description, type, urgency, status, previous_status,
                channel, feasibility, feasibility_note, is_complex, created_at, updated_at, first_response_at,
                resolved_at, closed_at, first_response_due, resolution_due, sla_state, sla_paused_seconds,
                assignee_id, requester_id, team_id)
            SELECT 'BX-' || g, 100000000 + g, 'Bench request ' || g, '',
                   (ARRAY['system_config','data_support','incident','feature','consultation'])[1 + mod(g, 5)],
                   (ARRAY['urgent','routine','planned'])[1 + mod(g, 3)],
                   CASE WHEN mod(g, 100) < 90 THEN 'closed' WHEN mod(g, 100) < 97 THEN 'cancelled'
                        ELSE (ARRAY['new','triaged','analysis','in_progress','waiting_on_requester','testing',
                                    'awaiting_acceptance'])[1 + mod(g, 7)] END,
                   '', (ARRAY['web','api','im','meeting'])[1 + mod(g, 4)], '', '', false, c, c,
                   c + (mod(g, 300)) * interval '1 minute',
                   CASE WHEN mod(g, 100) < 90 THEN c + (mod(g, 97)) * interval '1 hour' END,
                   CASE WHEN mod(g, 100) < 97 THEN c + (mod(g, 97) + 1) * interval '1 hour' END,
                   c + interval '4 hours', c + interval '3 days',
                   CASE WHEN mod(g, 13) = 0 THEN 'breached' ELSE 'on_track' END, 0,
                   (%(agents)s::bigint[])[1 + mod(g, %(n_agents)s)],
                   (%(requesters)s::bigint[])[1 + mod(g, 5)], (%(teams)s::bigint[])[1 + mod(g, 5)]
            FROM (SELECT g, now() - (mod(g, 365)) * interval '1 day' - (mod(g, 1440)) * interval '1 minute' AS c
                  FROM generate_series(1, %(n)s) g) s
            """,
            {
                "agents": agents,
                "n_agents": len(agents),
                "requesters": requesters,
                "teams": teams,
                "n": tickets,
            },
        )
        cur.execute(
            """
            INSERT INTO tickets_satisfactionrating (ticket_id, rated_by_id, score, comment, created_at)
            SELECT id, requester_id, 1 + mod(number, 5), '', closed_at FROM tickets_ticket
            WHERE key LIKE 'BX-%%' AND closed_at IS NOT NULL AND mod(number, 3) = 0
            """
        )
        timings["tickets_s"] = time.perf_counter() - start
        start = time.perf_counter()
        n_campaigns = max(1, -(-metrics // (DAYS_PER_CAMPAIGN * len(CHANNELS))))
        cur.execute(
            """
            INSERT INTO campaigns_campaign (name, code, objective, kpi_targets, channels, budget, start_date, end_date,
                status, status_manual, audience_include, audience_include_mode, audience_exclude, created_at,
                updated_at, owner_id, team_id)
            SELECT 'Bench campaign ' || g, 'bench-' || g, '', '{}', %(channels)s::varchar[], 100000 + (mod(g, 50)) * 1000,
                   current_date - 365 + (mod(g, 166)), current_date - 365 + (mod(g, 166)) + %(days)s - 1,
                   CASE WHEN mod(g, 166) > 150 THEN 'running' ELSE 'completed' END, false, '{}', 'any', '{}',
                   now(), now(), %(owner)s, (%(teams)s::bigint[])[1 + mod(g, 5)]
            FROM generate_series(1, %(n)s) g
            """,
            {
                "channels": CHANNELS,
                "days": DAYS_PER_CAMPAIGN,
                "owner": manager.pk,
                "teams": teams,
                "n": n_campaigns,
            },
        )
        cur.execute(
            """
            INSERT INTO campaigns_dailymetric (campaign_id, date, channel, spend, impressions, clicks, leads,
                conversions, revenue, imported_at)
            SELECT c.id, c.start_date + d, ch, 100 + mod(c.id * 7 + d, 900), 10000 + mod(d * 13, 5000),
                   200 + mod(d * 7, 300), 20 + mod(d, 30), 5 + mod(d, 15), 300 + mod(c.id * 11 + d, 2000), now()
            FROM campaigns_campaign c CROSS JOIN generate_series(0, %(days)s - 1) d CROSS JOIN unnest(%(channels)s::text[]) ch
            WHERE c.code LIKE 'bench-%%'
            ORDER BY c.id, d
            LIMIT %(n)s
            """,
            {"channels": CHANNELS, "days": DAYS_PER_CAMPAIGN, "n": metrics},
        )
        timings["metrics_s"] = time.perf_counter() - start
        start = time.perf_counter()
        cur.execute(
            """
            INSERT INTO crm_tags_customer (external_id, name, email, phone, signup_at, source_channel, attributes,
                created_at, updated_at)
            SELECT 'bc-' || g, 'Customer ' || g, 'c' || g || '@example.com', '138' || lpad(g::text, 8, '0'),
                   now() - (mod(g, 365)) * interval '1 day', (%(channels)s::text[])[1 + mod(g, 5)], '{}', now(), now()
            FROM generate_series(1, %(n)s) g
            """,
            {"channels": CHANNELS, "n": customers},
        )
        cur.execute(
            """
            INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, amount, channel, properties)
            SELECT c.id, 'order', c.signup_at + (k * 17 + mod(c.id, 40)) * interval '1 day', 100 + k, '', '{}'
            FROM crm_tags_customer c CROSS JOIN generate_series(0, 1) k
            WHERE c.signup_at + (k * 17 + mod(c.id, 40)) * interval '1 day' < now()
            """
        )
        cur.execute(
            """
            INSERT INTO crm_tags_tag (slug, name, description, kind, rollout_percent, schedule, members_count,
                created_at, updated_at)
            SELECT 'bench-tag-' || t, 'Bench tag ' || t, '', 'manual', 100, 'none', 0, now(), now()
            FROM generate_series(1, 10) t
            """
        )
        cur.execute(
            """
            INSERT INTO crm_tags_tagmembershipchange (tag_id, customer_id, change, created_at)
            SELECT t.id, c.id, CASE WHEN mod(c.id, 7) = 0 THEN 'exited' ELSE 'entered' END,
                   c.signup_at + interval '1 day'
            FROM crm_tags_customer c JOIN crm_tags_tag t ON mod(t.id, 10) = mod(c.id, 10)
            """
        )
        cur.execute(
            """
            UPDATE crm_tags_tag t SET members_count = s.n FROM (
              SELECT tag_id, sum(CASE WHEN change = 'entered' THEN 1 ELSE -1 END) AS n
              FROM crm_tags_tagmembershipchange GROUP BY tag_id) s WHERE s.tag_id = t.id
            """
        )
        timings["customers_s"] = time.perf_counter() - start
    # As autovacuum would have by then: statistics, and visibility maps for index-only scans.
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return timings


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def time_endpoints(runs: int) -> dict[str, float]:
    from django.core.cache import cache
    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username="bench-boss"))
    results: dict[str, float] = {}
    ranges = {"30d": {}, "365d": {"from": _days_ago(364)}}
    for name in ("support", "marketing", "customers"):
        for label, params in ranges.items():
            url = f"/api/v1/analytics/{name}/"
            client.get(url, params)  # warm-up: imports and connection, not what we measure
            samples = []
            for _ in range(runs):
                cache.clear()
                start = time.perf_counter()
                response = client.get(url, params)
                samples.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (url, response.status_code, response.content[:300])
            p50, p95 = statistics.median(samples), percentile(samples, 0.95)
            print(f"GET {url} ({label}, cold cache, {runs} runs): p50 {p50:.0f} ms, p95 {p95:.0f} ms")
            results[f"{name}_{label}_p50_ms"] = round(p50)
            results[f"{name}_{label}_p95_ms"] = round(p95)
    return results


def time_chart_endpoints(runs: int) -> dict[str, float]:
    """Each chart's own endpoint (what the page fetches, all in parallel), default 30-day range, cold cache."""
    from django.core.cache import cache
    from django.test import Client

    from accounts.models import User
    from analytics.charts import CHARTS

    client = Client()
    client.force_login(User.objects.get(username="bench-boss"))
    results: dict[str, float] = {}
    for name, charts in CHARTS.items():
        worst = 0.0
        for chart in charts:
            url = f"/dashboards/{name}/charts/{chart.key}/"
            client.get(url)
            samples = []
            for _ in range(runs):
                cache.clear()
                start = time.perf_counter()
                response = client.get(url)
                samples.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            p50, p95 = statistics.median(samples), percentile(samples, 0.95)
            worst = max(worst, p95)
            print(f"GET {url} (30d, cold cache, {runs} runs): p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        results[f"{name}_chart_max_p95_ms"] = round(worst)
    return results


def _days_ago(days: int) -> str:
    import datetime as dt

    from django.utils import timezone

    return (timezone.localdate() - dt.timedelta(days=days)).isoformat()


def xlsxwriter_write_xlsx(source, path, progress, every=5000, limit=1_048_575):  # noqa: ANN001, ANN201
    """The XLSX writer before the SQL-rendered rows (XlsxWriter, constant memory, every cell in Python):
    the baseline, and still the writer of masked reports."""
    from analytics import report_xlsx
    from analytics.reports import safe_rows
    from config.csv_export import safe_cell

    header = [safe_cell(h) for h in source.header]
    return report_xlsx.xlsxwriter_write(header, safe_rows(source), path, progress, every, limit)


def time_xlsxwriter_baseline() -> tuple[float, int, float]:
    """The same XLSX job with XlsxWriter in place of the rows rendered by Postgres."""
    from analytics import reports

    current = reports.write_xlsx
    reports.write_xlsx = xlsxwriter_write_xlsx
    try:
        return time_report("xlsx", label="xlsx (XlsxWriter baseline)")
    finally:
        reports.write_xlsx = current


def time_report(file_format: str, label: str = "") -> tuple[float, int, float]:
    """(seconds, rows, CPU seconds of this process): the CPU time tells the writer's own cost apart from
    waiting for a CPU on a loaded machine (Postgres' work is not in it)."""
    from accounts.models import User
    from analytics import services
    from analytics.models import ReportJob

    owner = User.objects.get(username="bench-boss")
    ReportJob.objects.filter(owner=owner).delete()
    start, cpu = time.perf_counter(), time.process_time()
    # Celery is eager here: the job runs when the request's transaction commits, inside this call.
    job, _created = services.report_job_request(
        owner=owner, kind="campaign_metrics", params={}, file_format=file_format
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    job.refresh_from_db()
    assert job.status == "done", job.error
    size = job.file.size
    print(
        f"report campaign_metrics.{label or file_format}: {job.rows} rows, {size / 1e6:.1f} MB in {seconds:.1f} s"
        f" (CPU {cpu:.1f} s)"
    )
    return seconds, job.rows, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--metrics", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="reuse the bench database when it exists")
    parser.add_argument("--skip-xlsx", action="store_true")
    parser.add_argument(
        "--xlsx-baseline", action="store_true", help="also time the XLSX job with XlsxWriter (the old writer)"
    )
    parser.add_argument("--skip-reports", action="store_true", help="time the endpoints only")
    parser.add_argument("--skip-endpoints", action="store_true", help="time the report jobs only")
    args = parser.parse_args()

    existed = setup_database(args.keep)
    summary: dict[str, float | int] = {"tickets": args.tickets, "metrics": args.metrics}
    if not existed:
        timings = generate(args.tickets, args.metrics, args.customers)
        print("generated: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if not args.skip_endpoints:
        summary.update(time_endpoints(args.runs))
        summary.update(time_chart_endpoints(args.runs))
    if args.skip_reports:
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
        return
    csv_seconds, rows, _cpu = time_report("csv")
    summary["csv_rows"] = rows
    summary["csv_s"] = round(csv_seconds, 1)
    if not args.skip_xlsx:
        xlsx_seconds, xlsx_rows, xlsx_cpu = time_report("xlsx")
        summary["xlsx_rows"] = xlsx_rows
        summary["xlsx_s"] = round(xlsx_seconds, 1)
        summary["xlsx_cpu_s"] = round(xlsx_cpu, 1)
        if args.xlsx_baseline:
            import xlsxwriter

            print(f"XlsxWriter {xlsxwriter.__version__}, constant_memory")
            baseline_seconds, _rows, baseline_cpu = time_xlsxwriter_baseline()
            summary["xlsx_xlsxwriter_s"] = round(baseline_seconds, 1)
            summary["xlsx_xlsxwriter_cpu_s"] = round(baseline_cpu, 1)
            summary["xlsx_speedup"] = round(baseline_seconds / xlsx_seconds, 1)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
