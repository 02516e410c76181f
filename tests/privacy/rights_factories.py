"""Factories for the person's rights tests: a person with a history in every app (events, ranks, a rule
tag and its history, consent and its history, campaign touchpoints and conversions, order months)."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection

from analytics import rollups
from campaigns.models import Campaign, Conversion, Touchpoint
from crm_tags import services as crm_services
from crm_tags.models import Customer, Tag
from privacy import consent, rights
from privacy.models import PrivacyRequest
from tests.campaigns.factories import campaign_make, metric_make
from tests.crm_tags import factories

BASE = dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
# a rule leaf "count >= 2 in 30 days" drives its statement from the ranks: registering it keeps ranks
RANKED_RULE = {"event": "page_view", "agg": "count", "window_days": 3650, "op": ">=", "value": 2}


def history_for(person: Customer, *, days: int = 6, orders: int = 3) -> None:
    """Page views and orders spread over the days before BASE."""
    rows = [(person, "page_view", BASE - dt.timedelta(days=d, hours=1), None) for d in range(days)]
    rows += [
        (person, "order", BASE - dt.timedelta(days=3 * d), Decimal(f"{100 + d}.50")) for d in range(orders)
    ]
    factories.events(rows)


def rule_tag_built(slug: str, definition: dict, capture: Any) -> Tag:
    """A rule tag published to everyone and built (its ranks registered first)."""
    tag = crm_services.tag_create(slug=slug, name=slug.title(), kind="rule", by=None)
    with capture(execute=True):
        crm_services.tag_version_create(tag=tag, definition=definition, by=None)
    with capture(execute=True):
        crm_services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=None)
    tag.refresh_from_db()
    return tag


def journeys_for(campaign: Campaign, external_id: str, *, converts: bool = True) -> None:
    Touchpoint.objects.create(
        campaign=campaign,
        customer_external_id=external_id,
        occurred_at=BASE - dt.timedelta(days=2),
        channel="wechat",
    )
    Touchpoint.objects.create(
        campaign=campaign,
        customer_external_id=external_id,
        occurred_at=BASE - dt.timedelta(days=1),
        channel="douyin",
    )
    if converts:
        Conversion.objects.create(
            campaign=campaign, customer_external_id=external_id, occurred_at=BASE, revenue=Decimal("88.00")
        )


def world(person: Customer, owner: Any, capture: Any) -> dict[str, Any]:
    """The person and a bystander with the same kind of history everywhere; returns what was made."""
    bystander = factories.customer(city=person.city, signup_at=person.signup_at, source_channel="wechat")
    for customer in (person, bystander):
        history_for(customer)
    tag = rule_tag_built("active-viewers", RANKED_RULE, capture)
    city = rule_tag_built("in-city", {"attr": "city", "op": "=", "value": person.city}, capture)
    for customer in (person, bystander):
        consent.consent_set(customer=customer, states={"marketing_email": "granted"}, source="web", by=None)
        consent.consent_set(customer=customer, states={"marketing_email": "withdrawn"}, source="api", by=None)
    campaign = campaign_make(
        owner=owner, code="double-11", start_date=dt.date(2026, 10, 1), end_date=dt.date(2026, 11, 30)
    )
    metric_make(campaign=campaign, date=dt.date(2026, 10, 30), spend=Decimal("500"), conversions=2)
    journeys_for(campaign, person.external_id)
    journeys_for(campaign, bystander.external_id)
    rollups.refresh_order_months(full=True)
    return {"bystander": bystander, "tags": [tag, city], "campaign": campaign}


def filed(kind: str, customer: Customer, by: Any, capture: Any) -> PrivacyRequest:
    """A request filed (an export runs at once: its job executes)."""
    with capture(execute=True):
        req = rights.request_file(kind=kind, customer_external_id=customer.external_id, by=by)
    req.refresh_from_db()
    return req


def erased(customer: Customer, by: Any, capture: Any) -> PrivacyRequest:
    """The person erased through the real flow: filed, approved, run."""
    req = filed("erase", customer, by, capture)
    with capture(execute=True):
        rights.request_approve(request=req, by=by)
    req.refresh_from_db()
    return req


def check_deferred_keys() -> None:
    """The deferred foreign keys checked now (a test's transaction never commits)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
