"""Factories for analytics tests: rows with exact timestamps, so every figure can be computed by hand."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from accounts.models import Team, User
from campaigns.models import Campaign
from crm_tags.models import Customer, Event, Tag, TagMembership, TagMembershipChange
from knowledge_base.models import Article, Deflection
from tests.campaigns import factories as campaigns_factories
from tickets.models import SatisfactionRating, Ticket

_numbers = itertools.count(5000)
UTC = dt.UTC


def at(day: int, hour: int = 12, minute: int = 0, month: int = 11) -> dt.datetime:
    """An instant in November 2026, UTC (Asia/Shanghai is UTC+8)."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def ticket_make(
    *, requester: User, created_at: dt.datetime, team: Team | None = None, **fields: Any
) -> Ticket:
    """A ticket row with the given times (created_at is set after insert: it is auto_now_add)."""
    number = next(_numbers)
    values: dict[str, Any] = {
        "key": f"MT-{number}",
        "number": number,
        "title": f"Request {number}",
        "type": Ticket.Type.INCIDENT,
        "urgency": Ticket.Urgency.ROUTINE,
        "status": Ticket.Status.NEW,
        "requester": requester,
        "team": team or requester.team,
    }
    values.update(fields)
    ticket = Ticket.objects.create(**values)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=created_at)
    ticket.refresh_from_db()
    return ticket


def rating_make(*, ticket: Ticket, score: int, created_at: dt.datetime) -> SatisfactionRating:
    rating = SatisfactionRating.objects.create(ticket=ticket, score=score, rated_by=ticket.requester)
    SatisfactionRating.objects.filter(pk=rating.pk).update(created_at=created_at)
    return rating


def deflection_make(*, user: User, created_at: dt.datetime, article: Article | None = None) -> Deflection:
    if article is None:
        article = Article.objects.create(title="How to export", body="Steps", owner=user)
    deflection = Deflection.objects.create(user=user, article=article, query="export")
    Deflection.objects.filter(pk=deflection.pk).update(created_at=created_at)
    return deflection


def campaign_make(*, owner: User, code: str, **fields: Any) -> Campaign:
    """A running November campaign (the campaigns factory with this fixture's defaults)."""
    values: dict[str, Any] = {
        "name": code.title(),
        "code": code,
        "budget": Decimal("1000"),
        "start_date": dt.date(2026, 11, 1),
        "end_date": dt.date(2026, 11, 30),
        "status": Campaign.Status.RUNNING,
    }
    values.update(fields)
    return campaigns_factories.campaign_make(owner=owner, **values)


metric_make = campaigns_factories.metric_make


def customer_make(external_id: str, *, signup_at: dt.datetime | None = None, **fields: Any) -> Customer:
    return Customer.objects.create(external_id=external_id, signup_at=signup_at, **fields)


def order_make(customer: Customer, occurred_at: dt.datetime, amount: str = "100") -> Event:
    return Event.objects.create(
        customer=customer, event_type="order", occurred_at=occurred_at, amount=Decimal(amount)
    )


def tag_make(slug: str, members_count: int = 0) -> Tag:
    return Tag.objects.create(slug=slug, name=slug.title(), kind=Tag.Kind.MANUAL, members_count=members_count)


def history_make(tag: Tag, customer: Customer, change: str, created_at: dt.datetime) -> TagMembershipChange:
    return TagMembershipChange.objects.create(
        tag=tag, customer=customer, change=change, created_at=created_at
    )


def membership_make(tag: Tag, customer: Customer, since: dt.datetime) -> TagMembership:
    return TagMembership.objects.create(tag=tag, customer=customer, since=since)
