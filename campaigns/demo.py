"""Demo campaigns: 618 大促 and 双11 预热 with a month of daily metrics, tasks, an A/B test and touchpoints."""

import datetime as dt
import random
from decimal import Decimal
from typing import Any, TextIO

from django.utils import timezone

from accounts.models import Team, User
from campaigns.models import (
    ABTest,
    ABVariant,
    Campaign,
    CampaignReview,
    CampaignTask,
    Conversion,
    DailyMetric,
    Touchpoint,
    UtmLink,
)
from campaigns.selectors import campaign_summary
from campaigns.utm import build_utm_url

# channel: (daily spend, CPM-ish impressions per 1 spend, CTR, lead rate, CVR, average order value)
CHANNELS: dict[str, tuple[int, int, float, float, float, int]] = {
    "wechat": (3000, 30, 0.022, 0.12, 0.018, 260),
    "douyin": (5000, 45, 0.018, 0.08, 0.012, 180),
    "tmall": (4000, 25, 0.035, 0.15, 0.025, 320),
    "xiaohongshu": (2000, 30, 0.028, 0.10, 0.010, 240),
    "baidu": (1500, 20, 0.040, 0.09, 0.008, 200),
}


def _plans(today: dt.date) -> list[dict[str, Any]]:
    year = today.year
    return [
        {
            "code": "618-promo",
            "name": "618 大促",
            "team": "E-commerce ops",
            "owner": "requester",
            "objective": "618 年中大促：拉新与复购，目标 GMV 300 万。",
            "kpi_targets": {"conversions": 8000, "roi": 1.5, "revenue": 3000000},
            "channels": ["wechat", "douyin", "tmall", "xiaohongshu"],
            "budget": Decimal("520000"),
            "start_date": dt.date(year, 5, 20),
            "end_date": dt.date(year, 6, 19),
            "status": Campaign.Status.REVIEWED,
            "audience_include": ["vip", "high-potential"],
            "audience_exclude": ["dormant-90-days"],
            "review": (
                "抖音直播与天猫会场联动效果最好；小红书种草带来高客单价新客。",
                "预热期素材更新太慢；库存预警晚了两天；微信社群转化低于预期。",
            ),
        },
        {
            "code": "d11-warmup",
            "name": "双11 预热",
            "team": "E-commerce ops",
            "owner": "requester",
            "objective": "双11 预热：收集意向用户与加购，为正式期蓄水。",
            "kpi_targets": {"leads": 60000, "conversions": 5000, "roi": 1.2},
            "channels": ["wechat", "douyin", "tmall", "baidu"],
            "budget": Decimal("400000"),
            "start_date": dt.date(year, 10, 15),
            "end_date": dt.date(year, 11, 11),
            "status": Campaign.Status.COMPLETED,
            "audience_include": ["vip", "new-this-month"],
            "audience_exclude": [],
            "review": None,
        },
        {
            "code": "brand-refresh",
            "name": "品牌焕新 Brand refresh",
            "team": "Brand marketing",
            "owner": "brand",
            "objective": "New visual identity launch across social channels.",
            "kpi_targets": {"impressions": 20000000},
            "channels": ["xiaohongshu", "douyin"],
            "budget": Decimal("150000"),
            "start_date": today - dt.timedelta(days=10),
            "end_date": today + dt.timedelta(days=20),
            "status": Campaign.Status.RUNNING,
            "audience_include": ["high-potential"],
            "audience_exclude": [],
            "review": None,
        },
        {
            "code": "cny-2027",
            "name": "年货节 Spring festival",
            "team": "E-commerce ops",
            "owner": "requester",
            "objective": "年货节：礼盒与家庭装。",
            "kpi_targets": {"conversions": 6000, "roi": 1.4},
            "channels": ["wechat", "tmall"],
            "budget": Decimal("300000"),
            "start_date": today + dt.timedelta(days=40),
            "end_date": today + dt.timedelta(days=65),
            "status": Campaign.Status.PLANNING,
            "audience_include": ["vip"],
            "audience_exclude": ["dormant-90-days"],
            "review": None,
        },
    ]


def _metrics(campaign: Campaign, rng: random.Random, days: int, scale: float) -> list[DailyMetric]:
    rows = []
    for offset in range(days):
        day = campaign.start_date + dt.timedelta(days=offset)
        if day > campaign.end_date:
            break
        # Spend ramps up towards the end of the campaign (the big day).
        ramp = 0.6 + 0.8 * offset / max(days - 1, 1)
        for channel in campaign.channels:
            base, per_spend, ctr, lead_rate, cvr, aov = CHANNELS[channel]
            spend = base * scale * ramp * rng.uniform(0.8, 1.2)
            impressions = int(spend * per_spend * rng.uniform(0.9, 1.1))
            clicks = int(impressions * ctr * rng.uniform(0.85, 1.15))
            leads = int(clicks * lead_rate * rng.uniform(0.8, 1.2))
            conversions = int(clicks * cvr * rng.uniform(0.8, 1.2))
            revenue = conversions * aov * rng.uniform(0.9, 1.1)
            rows.append(
                DailyMetric(
                    campaign=campaign,
                    date=day,
                    channel=channel,
                    spend=Decimal(f"{spend:.2f}"),
                    impressions=impressions,
                    clicks=clicks,
                    leads=leads,
                    conversions=conversions,
                    revenue=Decimal(f"{revenue:.2f}"),
                )
            )
    return rows


def _journeys(
    campaign: Campaign, rng: random.Random, customers: int
) -> tuple[list[Touchpoint], list[Conversion]]:
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(campaign.start_date, dt.time(9), tzinfo=tz)
    span_hours = max(((campaign.end_date - campaign.start_date).days + 1) * 24 - 12, 24)
    touches: list[Touchpoint] = []
    conversions: list[Conversion] = []
    for n in range(customers):
        customer = f"C{campaign.pk:03d}{n:05d}"
        moments = sorted(
            start + dt.timedelta(hours=rng.uniform(0, span_hours)) for _ in range(rng.randint(1, 4))
        )
        for moment in moments:
            channel = rng.choice(campaign.channels)
            touches.append(
                Touchpoint(
                    campaign=campaign,
                    customer_external_id=customer,
                    occurred_at=moment,
                    channel=channel,
                    utm_source=channel,
                    utm_medium="social" if channel in ("wechat", "douyin", "xiaohongshu") else "cpc",
                    utm_campaign=campaign.code,
                )
            )
        if rng.random() < 0.35:
            conversions.append(
                Conversion(
                    campaign=campaign,
                    customer_external_id=customer,
                    occurred_at=moments[-1] + dt.timedelta(hours=rng.uniform(0.5, 48)),
                    revenue=Decimal(f"{rng.uniform(80, 600):.2f}"),
                )
            )
    return touches, conversions


def seed(stdout: TextIO, small: bool = False) -> None:
    """Create the demo campaigns once; an existing campaign code is left as it is."""
    today = timezone.localdate()
    users = {
        u.username: u for u in User.objects.filter(username__in=["requester", "brand", "manager", "agent"])
    }
    teams = {t.name: t for t in Team.objects.filter(name__in=["E-commerce ops", "Brand marketing"])}
    if "requester" not in users or "manager" not in users or len(teams) < 2:
        stdout.write("campaigns: demo users missing, skipped")
        return
    created = 0
    for index, plan in enumerate(_plans(today)):
        if Campaign.objects.filter(code=plan["code"]).exists():
            continue
        rng = random.Random(618 + index)
        owner = users.get(plan["owner"], users["requester"])
        review = plan.pop("review")
        team = teams[plan.pop("team")]
        plan.pop("owner")
        approved = plan["status"] != Campaign.Status.PLANNING
        campaign = Campaign.objects.create(
            owner=owner,
            team=team,
            approved_by=users["manager"] if approved else None,
            approved_at=timezone.now() if approved else None,
            **plan,
        )
        created += 1
        last_day = min(campaign.end_date, today)
        days = (last_day - campaign.start_date).days + 1 if campaign.start_date <= today else 0
        if small:
            days = min(days, 10)
        DailyMetric.objects.bulk_create(_metrics(campaign, rng, days, scale=1.0 if index == 0 else 0.8))
        tasks = [
            ("确定预算与 KPI / Budget and KPIs", -20, True),
            ("素材设计 / Creative assets", -7, True),
            ("落地页上线 / Landing page live", -1, campaign.start_date < today),
            (
                "投放复盘数据准备 / Prepare review data",
                (campaign.end_date - campaign.start_date).days + 3,
                False,
            ),
        ]
        CampaignTask.objects.bulk_create(
            [
                CampaignTask(
                    campaign=campaign,
                    title=title,
                    owner=owner if n % 2 == 0 else users.get("agent", owner),
                    due_date=campaign.start_date + dt.timedelta(days=delta),
                    done=done,
                    done_at=timezone.now() if done else None,
                )
                for n, (title, delta, done) in enumerate(tasks)
            ]
        )
        for channel in campaign.channels[:2]:
            values = {"source": channel, "medium": "social", "utm_campaign": campaign.code}
            url = build_utm_url(
                url="https://shop.example.com/landing?ref=demo",
                campaign=campaign.code,
                source=channel,
                medium="social",
            )
            UtmLink.objects.create(
                campaign=campaign,
                base_url="https://shop.example.com/landing?ref=demo",
                url=url,
                created_by=owner,
                **values,
            )
        if days:
            test = ABTest.objects.create(
                campaign=campaign, name="首页主图 Hero banner", min_sample=1000, created_by=owner
            )
            exposures = 2400 if small else 12000
            ABVariant.objects.bulk_create(
                [
                    ABVariant(
                        test=test,
                        name="A 红色主图",
                        position=0,
                        exposures=exposures,
                        conversions=int(exposures * 0.041),
                    ),
                    ABVariant(
                        test=test,
                        name="B 产品特写",
                        position=1,
                        exposures=exposures + 150,
                        conversions=int(exposures * 0.049),
                    ),
                ]
            )
            touches, conversions = _journeys(campaign, rng, customers=120 if small else 1500)
            Touchpoint.objects.bulk_create(touches, batch_size=2000)
            Conversion.objects.bulk_create(conversions, batch_size=2000)
        if review:
            CampaignReview.objects.create(
                campaign=campaign,
                what_worked=review[0],
                what_to_improve=review[1],
                figures=campaign_summary(campaign=campaign) | {"frozen_at": timezone.now().isoformat()},
                author=owner,
            )
    stdout.write(f"campaigns: {created} demo campaign(s) created")
