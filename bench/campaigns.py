"""Benchmark of campaigns: metrics import rate, the summary endpoint, attribution and the list endpoint.

    python bench/campaigns.py [--campaigns 200] [--days 60] [--channels 6] [--customers 50000] [--requests 30]

Runs in its own database (martech_bench_campaigns, recreated and migrated). Every campaign gets
`days` x `channels` daily metric rows; the measured campaign also gets `customers` journeys of
1-5 touchpoints, a third of them converting. Requests go through the whole Django stack (test
client: auth, scoping, aggregation in Postgres, JSON). Ends with one line of name=value pairs.
"""

import argparse
import datetime as dt
import io
import random
import statistics
import time
from pathlib import Path

from benchdb import bench_database_setup

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "martech_bench_campaigns"
CHANNELS = ["wechat", "douyin", "tmall", "xiaohongshu", "baidu", "email", "sms", "jd"]


def setup_database() -> None:
    """Own database (recreated unless kept), migrated, Django set up."""
    bench_database_setup(DB_NAME, keep=False, redis_db=4)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def timed_requests(client, url: str, n: int) -> list[float]:
    client.get(url)  # warm-up: first-request imports and caches are not what we measure
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--channels", type=int, default=6)
    parser.add_argument("--customers", type=int, default=50000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    setup_database()

    from decimal import Decimal

    from django.utils import timezone
    from rest_framework.test import APIClient

    from accounts.services import user_create
    from campaigns import services
    from campaigns.models import Campaign, Conversion, DailyMetric, Touchpoint

    rng = random.Random(5)
    agent = user_create(
        username="bench-agent", role="agent", team_name="MarTech support", password="x-bench-1"
    )
    owner = user_create(
        username="bench-req", role="requester", team_name="E-commerce ops", password="x-bench-2"
    )
    channels = CHANNELS[: args.channels]
    start_day = dt.date(2026, 1, 1)

    t0 = time.perf_counter()
    campaigns = Campaign.objects.bulk_create(
        Campaign(
            name=f"Bench {n}",
            code=f"bench-{n}",
            budget=Decimal("1000000"),
            start_date=start_day,
            end_date=start_day + dt.timedelta(days=args.days - 1),
            channels=channels,
            owner=owner,
            team_id=owner.team_id,
        )
        for n in range(args.campaigns)
    )
    rows = []
    for campaign in campaigns[1:]:
        for d in range(args.days):
            for channel in channels:
                clicks = rng.randint(100, 5000)
                rows.append(
                    DailyMetric(
                        campaign=campaign,
                        date=start_day + dt.timedelta(days=d),
                        channel=channel,
                        spend=Decimal(rng.randint(100, 9000)),
                        impressions=clicks * 40,
                        clicks=clicks,
                        leads=clicks // 10,
                        conversions=clicks // 50,
                        revenue=Decimal(rng.randint(100, 30000)),
                    )
                )
        if len(rows) > 50000:
            DailyMetric.objects.bulk_create(rows, batch_size=5000)
            rows = []
    DailyMetric.objects.bulk_create(rows, batch_size=5000)
    seed_s = time.perf_counter() - t0

    # The measured campaign's metrics go through the real CSV import.
    target = campaigns[0]
    lines = ["date,channel,spend,impressions,clicks,leads,conversions,revenue"]
    for d in range(args.days):
        for channel in channels:
            clicks = rng.randint(100, 5000)
            lines.append(
                f"{(start_day + dt.timedelta(days=d)).isoformat()},{channel},{rng.randint(100, 9000)},"
                f"{clicks * 40},{clicks},{clicks // 10},{clicks // 50},{rng.randint(100, 30000)}"
            )
    payload = ("\n".join(lines) + "\n").encode()
    # warm-up on another campaign: first-call imports and the one-time budget notifications
    services.metrics_import(campaign=campaigns[1], upload=io.BytesIO(payload), by=owner)
    t0 = time.perf_counter()
    imported = services.metrics_import(campaign=target, upload=io.BytesIO(payload), by=owner)
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    services.metrics_import(campaign=target, upload=io.BytesIO(payload), by=owner)  # replaces every day
    reimport_s = time.perf_counter() - t0

    tz = timezone.get_default_timezone()
    touches, convs = [], []
    for n in range(args.customers):
        customer = f"K{n:07d}"
        moments = sorted(
            dt.datetime.combine(start_day, dt.time(), tzinfo=tz)
            + dt.timedelta(hours=rng.uniform(0, args.days * 24))
            for _ in range(rng.randint(1, 5))
        )
        touches += [
            Touchpoint(
                campaign=target, customer_external_id=customer, occurred_at=m, channel=rng.choice(channels)
            )
            for m in moments
        ]
        if rng.random() < 1 / 3:
            convs.append(
                Conversion(
                    campaign=target,
                    customer_external_id=customer,
                    occurred_at=moments[-1] + dt.timedelta(hours=2),
                    revenue=Decimal(rng.randint(50, 900)),
                )
            )
    Touchpoint.objects.bulk_create(touches, batch_size=10000)
    Conversion.objects.bulk_create(convs, batch_size=10000)
    with __import__("django.db").db.connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    client = APIClient()
    client.force_authenticate(agent)
    summary = timed_requests(client, f"/api/v1/campaigns/{target.code}/summary/", args.requests)
    listing = timed_requests(client, "/api/v1/campaigns/", args.requests)
    attribution = {
        model: timed_requests(
            client, f"/api/v1/campaigns/{target.code}/attribution/?model={model}", max(args.requests // 3, 3)
        )
        for model in ("first_touch", "last_touch", "linear", "position_based", "time_decay")
    }
    metric_rows = DailyMetric.objects.count()

    print(
        f"campaigns={args.campaigns} metric_rows={metric_rows} touchpoints={len(touches)} conversions={len(convs)}"
    )
    print(f"seeded in {seed_s:.1f}s")
    print(
        f"metrics import: {imported} rows in {import_s * 1000:.0f} ms ({imported / import_s:.0f} rows/s); re-import {reimport_s * 1000:.0f} ms"
    )
    print(f"summary p50 {statistics.median(summary):.1f} ms  p95 {percentile(summary, 0.95):.1f} ms")
    print(f"list p50 {statistics.median(listing):.1f} ms  p95 {percentile(listing, 0.95):.1f} ms")
    for model, samples in attribution.items():
        print(
            f"attribution {model} p50 {statistics.median(samples):.1f} ms  p95 {percentile(samples, 0.95):.1f} ms"
        )
    print(
        f"import_rows_per_s={imported / import_s:.0f} summary_p95_ms={percentile(summary, 0.95):.1f} "
        f"list_p95_ms={percentile(listing, 0.95):.1f} "
        f"attribution_linear_p95_ms={percentile(attribution['linear'], 0.95):.1f} "
        f"attribution_position_based_p95_ms={percentile(attribution['position_based'], 0.95):.1f} "
        f"attribution_time_decay_p95_ms={percentile(attribution['time_decay'], 0.95):.1f} metric_rows={metric_rows} "
        f"touchpoints={len(touches)}"
    )


if __name__ == "__main__":
    main()
