"""What crm_tags holds about one person, for their data export: profile, every event (streamed), tag
memberships and tag history. Values as stored (the export is the person's own data, unmasked); the
caller decides who may read them."""

from collections.abc import Iterator
from typing import Any

from crm_tags.models import CUSTOMER_FILE_COLUMNS, Customer, Event, TagMembership, TagMembershipChange

EVENT_CHUNK = 2000
PROFILE_FIELDS = (
    *CUSTOMER_FILE_COLUMNS,
    "attributes",
    "created_at",
    "updated_at",
)


def customer_for_export(*, customer_id: int) -> Customer | None:
    """The customer as stored (None when gone)."""
    return Customer.objects.filter(pk=customer_id).first()


def customer_profile(*, customer: Customer) -> dict[str, Any]:
    """Every field of the customer, attributes included."""
    return {field: getattr(customer, field) for field in PROFILE_FIELDS}


def customer_events_stream(*, customer: Customer) -> Iterator[dict[str, Any]]:
    """Every event of the customer, oldest first, read in chunks through the (customer, occurred_at) index."""
    rows = (
        Event.objects.filter(customer_id=customer.pk)
        .order_by("occurred_at", "id")
        .values("id", "event_type", "occurred_at", "amount", "channel", "properties")
    )
    yield from rows.iterator(chunk_size=EVENT_CHUNK)


def customer_memberships(*, customer: Customer) -> Iterator[dict[str, Any]]:
    """The customer's current tags with the time each was gained."""
    rows = (
        TagMembership.objects.filter(customer_id=customer.pk)
        .order_by("since", "tag_id")
        .values("tag__slug", "tag__name", "since")
    )
    for row in rows.iterator(chunk_size=EVENT_CHUNK):
        yield {"tag": row["tag__slug"], "tag_name": row["tag__name"], "since": row["since"]}


def customer_tag_history(*, customer: Customer) -> Iterator[dict[str, Any]]:
    """Every time the customer entered or left a tag, oldest first."""
    rows = (
        TagMembershipChange.objects.filter(customer_id=customer.pk)
        .order_by("created_at", "id")
        .values("tag__slug", "change", "version", "created_at")
    )
    for row in rows.iterator(chunk_size=EVENT_CHUNK):
        yield {
            "tag": row["tag__slug"],
            "change": row["change"],
            "version": row["version"],
            "at": row["created_at"],
        }


def customer_by_external_id(*, external_id: str) -> Customer | None:
    """The customer a person's request names (None when no one has that external id)."""
    if not external_id:
        return None
    return Customer.objects.filter(external_id=external_id).first()
