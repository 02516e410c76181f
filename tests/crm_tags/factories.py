"""Factories for customers, events and tags (events go through the real importer so totals stay exact)."""

import io
import itertools
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from crm_tags import importers, services
from crm_tags.models import Customer, Tag, TagVersion

_seq = itertools.count(1)


def customer(**fields: Any) -> Customer:
    number = next(_seq)
    defaults: dict[str, Any] = {
        "external_id": f"C{number:05d}",
        "name": f"Customer {number}",
        "email": f"person{number}@example.com",
        "phone": f"1380000{number:04d}",
        "city": "Shanghai",
    }
    defaults.update(fields)
    return Customer.objects.create(**defaults)


def events(rows: Iterable[tuple[Customer, str, datetime, Decimal | None]]) -> int:
    """Load (customer, event_type, occurred_at, amount) rows through the CSV importer."""
    lines = ["customer_external_id,event_type,occurred_at,amount,channel"]
    for cust, event_type, at, amount in rows:
        lines.append(
            f"{cust.external_id},{event_type},{at.isoformat()},{'' if amount is None else amount},web"
        )
    if len(lines) == 1:
        return 0
    return importers.import_events(io.StringIO("\n".join(lines) + "\n")).rows


def rule_tag(slug: str, definition: dict | None = None, *, by: Any = None, category: str = "") -> Tag:
    tag = services.tag_create(
        slug=slug, name=slug.replace("-", " ").title(), kind="rule", category=category, by=by
    )
    if definition is not None:
        services.tag_version_create(tag=tag, definition=definition, by=by)
    return tag


def version(tag: Tag, definition: dict, by: Any = None) -> TagVersion:
    return services.tag_version_create(tag=tag, definition=definition, by=by)
