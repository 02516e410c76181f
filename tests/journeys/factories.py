"""Journeys, tags and customers for the engine's tests, made through the real services."""

import itertools
from typing import Any

from accounts.models import User
from crm_tags import services as tag_services
from crm_tags.manual_members import tag_members_change
from crm_tags.models import Customer, Tag
from journeys import admission, services
from journeys.models import Destination, Enrolment, Journey
from privacy import consent
from tests.crm_tags import factories as crm

_seq = itertools.count(1)


def customer(**fields: Any) -> Customer:
    return crm.customer(**fields)


def customers(n: int, **fields: Any) -> list[Customer]:
    return [crm.customer(**fields) for _ in range(n)]


def manual_tag(slug: str | None = None) -> Tag:
    slug = slug or f"list-{next(_seq)}"
    return tag_services.tag_create(slug=slug, name=slug.title(), kind="manual", category="", by=None)


def enter(tag: Tag, people: list[Customer]) -> None:
    """The customers enter the tag (a build with its entered history)."""
    tag_members_change(tag=tag, add=[c.pk for c in people])


def leave(tag: Tag, people: list[Customer]) -> None:
    tag_members_change(tag=tag, remove=[c.pk for c in people])


def grant(people: list[Customer], *purposes: str) -> None:
    for person in people:
        consent.consent_set(customer=person, states=dict.fromkeys(purposes, "granted"), source="api", by=None)


def withdraw(people: list[Customer], *purposes: str) -> None:
    for person in people:
        consent.consent_set(
            customer=person, states=dict.fromkeys(purposes, "withdrawn"), source="api", by=None
        )


def journey(
    by: User,
    *,
    tag: Tag | None = None,
    trigger: dict | None = None,
    steps: list | None = None,
    entry: dict | None = None,
    goal: dict | None = None,
    activate_as: User | None = None,
    percent: int | None = 100,
    campaign: Any = None,
) -> Journey:
    """A journey (by default on entering `tag`), activated by `activate_as` (default: `by`)."""
    made = services.journey_create(
        by=by,
        name=f"Journey {next(_seq)}",
        trigger=trigger or {"kind": "tag_entered", "tag": tag.slug},
        entry=entry or {"reentry": "always"},
        steps=steps or [],
        goal=goal,
        campaign=campaign,
    )
    if activate_as is not False:
        made = services.journey_activate(journey=made, by=activate_as or by, percent=percent)
    return made


def webhook(by: User, url: str, **fields: Any) -> Destination:
    return services.destination_create(
        by=by, name=fields.pop("name", f"hook-{next(_seq)}"), kind="webhook", url=url, **fields
    )


def admit() -> int:
    return admission.admit_tag_triggers()


def enrolments(j: Journey) -> list[Enrolment]:
    return list(Enrolment.objects.filter(journey=j).order_by("customer_id", "pk"))
