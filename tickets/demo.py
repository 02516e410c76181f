"""Demo requests: a few hundred tickets over two months with replies, ratings and SLA outcomes.

Written with bulk_create (seconds, not minutes); running it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TextIO

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from tickets import sla
from tickets.models import (
    CannedReply,
    Comment,
    Retrospective,
    SatisfactionRating,
    Ticket,
    TicketCounter,
    TicketEvent,
)
from tickets.services import KEY_PREFIX, sla_defaults_ensure

S = Ticket.Status
TITLES = {
    "system_config": [
        ("Add a new member level to the CRM", "新增会员等级"),
        ("Change the mini-program home banner rotation", "调整小程序首页轮播"),
        ("Set up SMS template for Double 11", "配置双11短信模板"),
        ("Update coupon stacking rules", "更新优惠券叠加规则"),
    ],
    "data_support": [
        ("Export last month's orders by city", "导出上月各城市订单"),
        ("Fix duplicated customers in the CRM", "修复CRM重复客户"),
        ("Weekly GMV report adds a channel column", "周报GMV增加渠道列"),
        ("Pull coupon redemption for the spring campaign", "拉取春季活动核销数据"),
    ],
    "incident": [
        ("Checkout fails for WeChat Pay", "微信支付下单失败"),
        ("Promotion price not shown on product page", "商品页不显示促销价"),
        ("Landing page returns 500", "落地页报500错误"),
        ("Push notifications not delivered", "推送消息未送达"),
    ],
    "feature": [
        ("Referral programme with invite codes", "邀请码裂变活动"),
        ("A/B test for the checkout button", "结算按钮A/B测试"),
        ("Birthday coupon automation", "生日券自动发放"),
        ("Live-stream shopping integration", "直播带货对接"),
    ],
    "consultation": [
        ("How to segment lapsed buyers?", "如何圈选流失用户？"),
        ("Best time to send EDM", "邮件营销最佳发送时间"),
        ("Which attribution model should we use?", "应该用哪种归因模型？"),
    ],
}
REPLIES = [
    "Thanks, we are looking into it.",
    "Could you share a screenshot of the page?",
    "Deployed to staging, please have a look.",
    "收到，正在处理。",
    "已上线，请验收。",
]
NOTES = [
    "Root cause: cache TTL too long.",
    "Needs vendor ticket with the SMS provider.",
    "内部备注：需要排期。",
]
CANNED = [
    ("Acknowledged", "Thanks for the request, we have picked it up and will update you here."),
    ("Need screenshot", "Could you attach a screenshot and the exact page URL?"),
    ("Delivered", "The change is live. Please check and accept the request if it works for you."),
    ("已收到", "您的需求已收到，我们会尽快处理并在此更新进展。"),
    ("请验收", "已完成上线，请确认效果后点击验收。"),
]


def seed(stdout: TextIO, small: bool = False) -> None:
    """Create demo tickets once (skipped when any ticket exists)."""
    for title, body in CANNED:
        CannedReply.objects.get_or_create(title=title, defaults={"body": body})
    if Ticket.objects.exists():
        stdout.write("tickets: demo requests already present")
        return
    people = {
        u.username: u
        for u in User.objects.filter(username__in=["requester", "brand", "agent", "agent2", "manager"])
    }
    if len(people) < 5:
        stdout.write("tickets: demo users missing, skipped")
        return
    sla_defaults_ensure()
    with transaction.atomic():
        count = _seed_tickets(people, 60 if small else 360)
    stdout.write(f"tickets: {count} demo requests")


def _seed_tickets(people: dict[str, User], count: int) -> int:
    rng = random.Random(20261121)
    now = timezone.now()
    targets = sla.load_targets()
    counter, _created = TicketCounter.objects.select_for_update().get_or_create(prefix=KEY_PREFIX)
    requesters = [people["requester"], people["brand"]]
    agents = [people["agent"], people["agent2"], people["manager"]]
    tickets: list[Ticket] = []
    plans: list[dict] = []
    for index in range(count):
        number = counter.last_number + 1 + index
        kind = rng.choices(list(TITLES), weights=[3, 3, 2, 1, 1])[0]
        title_en, title_zh = rng.choice(TITLES[kind])
        urgency = rng.choices(["urgent", "routine", "planned"], weights=[2, 6, 2])[0]
        age = dt.timedelta(days=60 * (index / count) ** 0.9)
        created = now - dt.timedelta(days=60) + age + dt.timedelta(minutes=rng.randint(0, 600))
        created = min(created, now - dt.timedelta(minutes=5))
        requester = rng.choice(requesters)
        ticket = Ticket(
            key=f"{KEY_PREFIX}-{number}",
            number=number,
            title=f"{title_en} / {title_zh}",
            description=f"**{title_en}**\n\n{title_zh}。\n\n- channel: mall\n- priority: {urgency}",
            type=kind,
            urgency=urgency,
            channel=rng.choices(["web", "api", "im", "meeting"], weights=[7, 1, 1, 1])[0],
            requester=requester,
            team_id=requester.team_id,
            created_at=created,
        )
        sla.apply_due_times(ticket, targets[urgency].for_type(kind))
        days_old = (now - created).days
        if days_old > 14:
            status = rng.choices([S.CLOSED, S.RESOLVED, S.REJECTED, S.CANCELLED], weights=[14, 2, 1, 1])[0]
        else:
            status = rng.choice(list(Ticket.OPEN_STATUSES) + [S.RESOLVED, S.CLOSED])
        ticket.status = status
        if status != S.NEW:
            ticket.assignee = rng.choice(agents)
            ticket.feasibility = rng.choices(list(Ticket.Feasibility.values), weights=[8, 1, 1])[0]
            late = rng.random() < 0.15
            span = ticket.first_response_due - created
            ticket.first_response_at = created + (
                span * rng.uniform(1.1, 3) if late else span * rng.uniform(0.1, 0.9)
            )
            ticket.first_response_at = min(ticket.first_response_at, now)
        if status == S.WAITING_ON_REQUESTER:
            ticket.previous_status = S.IN_PROGRESS
            ticket.sla_paused_at = now - dt.timedelta(hours=rng.randint(1, 30))
        if status in (S.RESOLVED, S.CLOSED):
            late = rng.random() < 0.2
            span = ticket.resolution_due - created
            ticket.resolved_at = min(
                created + span * (rng.uniform(1.05, 2) if late else rng.uniform(0.2, 0.95)), now
            )
            if status == S.CLOSED:
                ticket.closed_at = min(ticket.resolved_at + dt.timedelta(days=rng.randint(0, 7)), now)
        sla.refresh(ticket, now)
        ticket.updated_at = ticket.closed_at or ticket.resolved_at or ticket.first_response_at or created
        tickets.append(ticket)
        plans.append(
            {
                "rated": status == S.CLOSED and rng.random() < 0.75,
                "score": rng.choices([5, 4, 3, 2, 1], weights=[6, 4, 2, 1, 1])[0],
            }
        )
    _bulk_create_keeping_times(Ticket, tickets, ["created_at", "updated_at"])
    counter.last_number += count
    counter.save(update_fields=["last_number"])

    comments: list[Comment] = []
    events: list[TicketEvent] = []
    ratings: list[SatisfactionRating] = []
    for ticket, plan in zip(tickets, plans, strict=True):
        events.append(
            TicketEvent(
                ticket=ticket, actor=ticket.requester, kind="created", new="new", created_at=ticket.created_at
            )
        )
        if ticket.first_response_at:
            comments.append(
                Comment(
                    ticket=ticket,
                    author=ticket.assignee,
                    body=rng.choice(REPLIES),
                    created_at=ticket.first_response_at,
                )
            )
            events.append(
                TicketEvent(
                    ticket=ticket,
                    actor=ticket.assignee,
                    kind="status",
                    field="status",
                    old="new",
                    new="triaged",
                    created_at=ticket.first_response_at,
                )
            )
            if rng.random() < 0.4:
                comments.append(
                    Comment(
                        ticket=ticket,
                        author=ticket.assignee,
                        body=rng.choice(NOTES),
                        internal=True,
                        created_at=ticket.first_response_at + dt.timedelta(minutes=20),
                    )
                )
            if rng.random() < 0.5:
                comments.append(
                    Comment(
                        ticket=ticket,
                        author=ticket.requester,
                        body="OK, thanks! / 好的，谢谢！",
                        created_at=ticket.first_response_at + dt.timedelta(hours=1),
                    )
                )
        if ticket.resolved_at:
            events.append(
                TicketEvent(
                    ticket=ticket,
                    actor=ticket.requester,
                    kind="status",
                    field="status",
                    old="awaiting_acceptance",
                    new="resolved",
                    created_at=ticket.resolved_at,
                )
            )
        if ticket.closed_at:
            events.append(
                TicketEvent(
                    ticket=ticket,
                    actor=None,
                    kind="status",
                    field="status",
                    old="resolved",
                    new="closed",
                    created_at=ticket.closed_at,
                )
            )
        if plan["rated"]:
            ratings.append(
                SatisfactionRating(
                    ticket=ticket,
                    rated_by=ticket.requester,
                    score=plan["score"],
                    comment="",
                    created_at=ticket.closed_at,
                )
            )
    _bulk_create_keeping_times(Comment, comments, ["created_at"])
    _bulk_create_keeping_times(TicketEvent, events, ["created_at"])
    _bulk_create_keeping_times(SatisfactionRating, ratings, ["created_at"])
    closed = [t for t in tickets if t.status == S.CLOSED][:5]
    Retrospective.objects.bulk_create(
        Retrospective(
            ticket=t,
            background=f"{t.title}: the requester reported the problem during a campaign.",
            solution="1. Reproduced on staging\n2. Fixed the configuration\n3. Verified with the requester",
            configuration="cache.ttl = 300",
            lessons="Add a check to the release list.",
            author=t.assignee,
        )
        for t in closed
    )
    return len(tickets)


def _bulk_create_keeping_times(model: type, objects: list, fields: list[str]) -> None:
    """bulk_create, then put back the demo times that auto_now(_add) replaced with "now" on insert
    (one set-based UPDATE … FROM unnest() per table; bulk_update's CASE chains are far slower)."""
    from django.db import connection

    wanted = [[getattr(obj, name) for name in fields] for obj in objects]
    model.objects.bulk_create(objects, batch_size=1000)
    if not objects:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [connection.ops.quote_name(model._meta.get_field(name).column) for name in fields]
    assignments = ", ".join(f"{column} = v.c{index}" for index, column in enumerate(columns))
    unnests = ", ".join(f"unnest(%s::timestamptz[]) AS c{index}" for index in range(len(fields)))
    params = [[obj.pk for obj in objects]] + [[row[i] for row in wanted] for i in range(len(fields))]
    # identifiers come from model metadata (quoted), values are bound parameters
    sql = f"UPDATE {table} SET {assignments} FROM (SELECT unnest(%s::bigint[]) AS id, {unnests}) AS v WHERE {table}.id = v.id"  # noqa: S608, E501
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
