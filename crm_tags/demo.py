"""Demo customers with a year of events and a handful of useful tags (seconds: COPY through the importers)."""

import io
import random
from datetime import datetime, time, timedelta
from typing import TextIO

from django.utils import timezone

from crm_tags import importers, ranks, services
from crm_tags.models import Customer, Tag, TagBuild, TagVersion

CITIES = ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu", "Wuhan", "Nanjing"]
CHANNELS = ["web", "app", "mini_program", "store"]
SURNAMES = ["Zhang", "Wang", "Li", "Zhao", "Chen", "Liu", "Yang", "Huang", "Zhou", "Wu"]
GIVEN = ["Wei", "Fang", "Na", "Min", "Jing", "Lei", "Yan", "Jun", "Tao", "Xin", "Hui", "Qiang"]


def _tags(month_start: datetime) -> list[dict]:
    return [
        {
            "slug": "high-potential",
            "name": "High potential",
            "category": "Value",
            "rule": {
                "all": [
                    {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 5},
                    {"event": "order", "agg": "avg", "field": "amount", "op": ">=", "value": 200},
                ]
            },
        },
        {
            "slug": "vip",
            "name": "VIP",
            "category": "Value",
            "rule": {
                "any": [
                    {
                        "event": "order",
                        "agg": "sum",
                        "field": "amount",
                        "window_days": 365,
                        "op": ">=",
                        "value": 3000,
                    },
                    {"attr": "attributes.tier", "op": "=", "value": "gold"},
                ]
            },
        },
        {
            "slug": "dormant-90-days",
            "name": "Dormant 90 days",
            "category": "Lifecycle",
            "rule": {
                "all": [
                    {"event": "page_view", "agg": "days_since_last", "op": ">", "value": 90},
                    {"event": "order", "agg": "days_since_last", "op": ">", "value": 90},
                ]
            },
        },
        {
            "slug": "new-this-month",
            "name": "New this month",
            "category": "Lifecycle",
            "rule": {"attr": "signup_at", "op": ">=", "value": month_start.isoformat()},
        },
    ]


def _customers_csv(rng: random.Random, count: int, now: datetime) -> str:
    lines = ["external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel,tier"]
    for i in range(1, count + 1):
        name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
        signup = now - timedelta(
            days=rng.choices([rng.randint(0, 25), rng.randint(26, 700)], weights=[5, 95])[0]
        )
        birth = f"{rng.randint(1960, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        tier = rng.choices(["", "silver", "gold"], weights=[85, 12, 3])[0]
        lines.append(
            f"DEMO-{i:05d},{name},{name.lower().replace(' ', '.')}{i}@example.com,1{rng.randint(3000000000, 9999999999)},"
            f"{rng.choice(CITIES)},{rng.choice(['f', 'm'])},{birth},{signup.isoformat()},{rng.choice(CHANNELS)},{tier}"
        )
    return "\n".join(lines) + "\n"


def _events_csv(rng: random.Random, count: int, now: datetime) -> str:
    lines = ["customer_external_id,event_type,occurred_at,amount,channel"]
    for i in range(1, count + 1):
        external_id = f"DEMO-{i:05d}"
        activity = rng.choices(["heavy", "regular", "light", "dormant"], weights=[10, 40, 35, 15])[0]
        views = {"heavy": 60, "regular": 20, "light": 6, "dormant": 8}[activity]
        spend = rng.choice([60, 120, 180, 250, 400])
        newest = 95 if activity == "dormant" else 0
        for _ in range(rng.randint(views // 2, views)):
            recent = activity == "heavy" and rng.random() < 0.4
            day = rng.uniform(newest, 30 if recent else 365)
            at = now - timedelta(days=day)
            lines.append(f"{external_id},page_view,{at.isoformat()},,{rng.choice(CHANNELS)}")
            if rng.random() < 0.12:
                amount = max(5, rng.gauss(spend, spend / 3))
                lines.append(
                    f"{external_id},order,{(at + timedelta(minutes=5)).isoformat()},{amount:.2f},{rng.choice(CHANNELS)}"
                )
            elif rng.random() < 0.03:
                lines.append(f"{external_id},coupon_redeemed,{at.isoformat()},,{rng.choice(CHANNELS)}")
    return "\n".join(lines) + "\n"


def seed(stdout: TextIO, small: bool = False) -> None:
    """Customers DEMO-00001.., a year of events, and four published tags (built now). Idempotent."""
    now = timezone.now().replace(microsecond=0)
    count = 400 if small else 3000
    if not Customer.objects.filter(external_id="DEMO-00001").exists():
        rng = random.Random(20261121)
        importers.import_customers(io.StringIO(_customers_csv(rng, count, now)))
        result = importers.import_events(io.StringIO(_events_csv(rng, count, now)))
        stdout.write(f"crm_tags: {count} customers, {result.rows} events\n")
    local = timezone.localtime(now)
    month_start = timezone.make_aware(
        datetime.combine(local.date().replace(day=1), time.min), timezone.get_current_timezone()
    )
    created = []
    for spec in _tags(month_start):
        tag = Tag.objects.filter(slug=spec["slug"]).first()
        if tag is not None:
            continue
        tag = services.tag_create(
            slug=spec["slug"], name=spec["name"], kind="rule", category=spec["category"], by=None
        )
        version = TagVersion.objects.create(tag=tag, number=1, definition=spec["rule"], depends_on=[])
        Tag.objects.filter(pk=tag.pk).update(current_version=version, rollout_percent=100)
        created.append(Tag.objects.select_related("current_version").get(pk=tag.pk))
    if created:
        ranks.sync()
        builds = services.tags_rebuild_all(trigger=TagBuild.Trigger.MANUAL, tags=created)
        for build in builds:
            stdout.write(f"crm_tags: tag {build.tag.slug}: {build.members} members ({build.status})\n")
