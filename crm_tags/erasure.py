"""A person erased from crm_tags: an anonymous surrogate customer takes over their events, lifetime
totals, ranks and tag history (so every count, cohort and chart stays as it was), their memberships
end with an `erased` history entry, and their own row goes.

The privacy app's erase job calls these in its one transaction, in this order:

    customer = customer_lock(customer_id=...)
    surrogate = surrogate_create(customer=customer)
    counts = customer_records_move(customer=customer, surrogate=surrogate, at=now)
    ...                                   # other apps let go of the person
    customer_delete(customer=customer)   # last: nothing may reference the row any more

Every statement goes through an index that starts with the customer (events by (customer,
occurred_at), totals by (customer, event_type), ranks by their key (event_type, customer, k), history
and memberships by (customer, ...)), so one person costs a few milliseconds whatever the table sizes.
"""

import logging
import secrets
from datetime import datetime
from typing import Any

from django.db import connection

from crm_tags.models import Customer, Event
from privacy.personal_data import personal_attribute_keys
from privacy.scrubbing import Scrubber

log = logging.getLogger(__name__)

SURROGATE_PREFIX = "anon-"

# Every table that references a customer, and what an erasure does with the person's rows there (a test
# compares this with the models: a new reference must be handled here, or in the step named, first).
MOVED = "moved to the surrogate"
CUSTOMER_REFERENCES = {
    "crm_tags.Event.customer": MOVED + " (customer_records_move; properties quoting the person scrubbed)",
    "crm_tags.CustomerEventTotal.customer": MOVED,
    "crm_tags.EventRank.customer": MOVED,
    "crm_tags.TagMembership.customer": "ended: deleted, with an `erased` history entry on the surrogate",
    "crm_tags.TagMembershipChange.customer": MOVED,
    "crm_tags.CustomerValue.customer": MOVED,
    "crm_tags.CustomerPurchaseDays.customer": MOVED + " (or recomputed for it by the events' trigger)",
    "crm_tags.CustomerIdentifier.customer": "deleted (_identity_erase)",
    "crm_tags.CustomerMerge.survivor": "deleted (_identity_erase)",
    "privacy.Consent.customer": "deleted; the surrogate withdraws every purpose (privacy.rights)",
    "privacy.ConsentChange.customer": "deleted (privacy.rights)",
    "privacy.UnmaskedAccess.customer": "unlinked (privacy.rights)",
    "privacy.PrivacyRequest.customer": "unlinked (privacy.rights)",
    "journeys.Enrolment.customer": MOVED + " (journeys.services.customer_erase)",
    "journeys.ContactCount.customer": MOVED + " (journeys.services.customer_erase)",
    "journeys.SyncMember.customer": MOVED + " (journeys.services.customer_erase)",
    "journeys.SyncBaseline.customer": MOVED + " (journeys.services.customer_erase)",
}


def customer_lock(*, customer_id: int) -> Customer | None:
    """The customer's row locked for the erasure (None when it is gone already)."""
    return Customer.objects.select_for_update().filter(pk=customer_id).first()


def surrogate_create(*, customer: Customer, scrubber: Scrubber | None = None) -> Customer:
    """An anonymous stand-in for `customer`: a random external id nothing can trace back, no name, e-mail,
    phone or birth date, no personal attribute (and the person's values replaced in the others); city,
    gender, signup time, source channel and the other attributes are kept so that cohorts and segment
    figures stay equal."""
    personal = personal_attribute_keys()
    attributes = {k: v for k, v in (customer.attributes or {}).items() if k not in personal}
    if scrubber is not None:
        attributes = scrubber.json(attributes)
    return Customer.objects.create(
        external_id=f"{SURROGATE_PREFIX}{secrets.token_hex(16)}",
        name="",
        email=None,
        phone=None,
        birth_date=None,
        city=customer.city,
        gender=customer.gender,
        signup_at=customer.signup_at,
        source_channel=customer.source_channel,
        attributes=attributes,
    )


def customer_records_move(
    *, customer: Customer, surrogate: Customer, at: datetime, scrubber: Scrubber | None = None
) -> dict[str, int]:
    """Move the person's events, totals, ranks, tag history, customer value and purchase days to the
    surrogate (set-based UPDATEs), end their memberships (one `erased` entry each, on the surrogate; the
    tags' member counts go down), delete their identifiers and merge records, and replace the person's
    values where event properties quote them. Returns how many rows of each kind (never values)."""
    old, new = customer.pk, surrogate.pk
    with connection.cursor() as cursor:
        # Imports and the ranks' sync take this lock too: no event of the person is written between the
        # moves below (reads, tag builds included, go on).
        cursor.execute("LOCK TABLE crm_tags_event IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            "SELECT COALESCE(array_agg(DISTINCT event_type), '{}') FROM ("
            "SELECT event_type FROM crm_tags_customereventtotal WHERE customer_id = %s "
            "UNION ALL SELECT event_type FROM crm_tags_event WHERE customer_id = %s) t",
            [old, old],
        )
        types = cursor.fetchone()[0]
        # Ranks through their key (event_type, customer, k), the types known. The events' update trigger
        # then recomputes both customers' ranks of those types from the moved events: the same times.
        cursor.execute(
            "UPDATE crm_tags_eventrank SET customer_id = %s WHERE event_type = ANY(%s) AND customer_id = %s",
            [new, types, old],
        )
        ranks = cursor.rowcount
        cursor.execute("UPDATE crm_tags_event SET customer_id = %s WHERE customer_id = %s", [new, old])
        events = cursor.rowcount
        cursor.execute(
            "UPDATE crm_tags_customereventtotal SET customer_id = %s WHERE customer_id = %s", [new, old]
        )
        totals = cursor.rowcount
        # Moving history adds and removes the same (day, tag) counts in the analytics rollup: no change.
        cursor.execute(
            "UPDATE crm_tags_tagmembershipchange SET customer_id = %s WHERE customer_id = %s", [new, old]
        )
        history = cursor.rowcount
        # Builds lock their tag's row before they touch its membership: take the same locks (in id order,
        # as any two erasures do) so that no build is between reading and writing these memberships.
        cursor.execute(
            "SELECT id FROM crm_tags_tag WHERE id IN ("
            "SELECT tag_id FROM crm_tags_tagmembership WHERE customer_id = %s) ORDER BY id FOR UPDATE",
            [old],
        )
        cursor.execute(
            "WITH gone AS (DELETE FROM crm_tags_tagmembership WHERE customer_id = %s RETURNING tag_id), "
            "counted AS (UPDATE crm_tags_tag t SET members_count = GREATEST(t.members_count - 1, 0) "
            "FROM gone WHERE t.id = gone.tag_id RETURNING t.id) "
            "INSERT INTO crm_tags_tagmembershipchange (tag_id, customer_id, change, version, build_id, created_at) "
            "SELECT tag_id, %s, 'erased', NULL, NULL, %s FROM gone",
            [old, new, at],
        )
        memberships = cursor.rowcount
        properties = _event_properties_scrub(cursor, surrogate.pk, scrubber) if scrubber else 0
        identity = _identity_erase(cursor, old)
        # the value figures follow the events they are computed from (the events' update trigger may have
        # recomputed the purchase days of both already: then the person has none left to move)
        cursor.execute(
            "UPDATE crm_tags_customervalue SET customer_id = %s WHERE customer_id = %s", [new, old]
        )
        values = cursor.rowcount
        cursor.execute(
            "UPDATE crm_tags_customerpurchasedays SET customer_id = %s WHERE customer_id = %s "
            "AND NOT EXISTS (SELECT 1 FROM crm_tags_customerpurchasedays WHERE customer_id = %s)",
            [new, old, new],
        )
        purchase_days = cursor.rowcount
        cursor.execute("DELETE FROM crm_tags_customerpurchasedays WHERE customer_id = %s", [old])
    log.info(
        "customer %s moved to surrogate %s: %s events, %s totals, %s ranks, %s history, %s memberships ended",
        old,
        new,
        events,
        totals,
        ranks,
        history,
        memberships,
    )
    return {
        "events": events,
        "event_totals": totals,
        "event_ranks": ranks,
        "tag_history": history,
        "tag_memberships": memberships,
        "event_properties": properties,
        **identity,
        "customer_values": values,
        "purchase_days": purchase_days,
    }


def _identity_erase(cursor: Any, customer_id: int) -> dict[str, int]:
    """The person's identifiers, and the records of the profiles merged into theirs (each a snapshot of
    that profile's values and its old external id), are the person's values: they go. An erased person
    cannot be unmerged."""
    cursor.execute("DELETE FROM crm_tags_customeridentifier WHERE customer_id = %s", [customer_id])
    identifiers = cursor.rowcount
    cursor.execute("DELETE FROM crm_tags_customermerge WHERE survivor_id = %s", [customer_id])
    return {"identifiers": identifiers, "merges": cursor.rowcount}


def _event_properties_scrub(cursor: Any, customer_id: int, scrubber: Scrubber) -> int:
    """Event properties (free columns of an import) that quote the person's values get them replaced."""
    cursor.execute(
        "SELECT id FROM crm_tags_event WHERE customer_id = %s AND properties::text ILIKE ANY(%s)",
        [customer_id, scrubber.json_patterns()],
    )
    ids = [row[0] for row in cursor.fetchall()]
    for pk, properties in Event.objects.filter(pk__in=ids).values_list("pk", "properties"):
        Event.objects.filter(pk=pk).update(properties=scrubber.json(properties))
    return len(ids)


def rule_literals_scrub(*, scrubber: Scrubber) -> int:
    """Rule versions whose literals quote the person's values (`{"attr": "email", "op": "=", "value": …}`)
    get them replaced: the rule then matches nobody by that value, which is what it matched once the
    person is gone. Versions are otherwise immutable; this is the one write the law asks for. The table
    holds a few thousand versions at most: one scan with the patterns."""
    if not scrubber:
        return 0
    from crm_tags.models import TagVersion

    versions = TagVersion.objects.extra(  # noqa: S610 - fixed SQL, the patterns are parameters
        where=["definition::text ILIKE ANY(%s)"], params=[scrubber.json_patterns()]
    ).values_list("pk", "definition")
    changed = 0
    for pk, definition in list(versions):
        scrubbed = scrubber.json(definition)
        if scrubbed != definition:
            TagVersion.objects.filter(pk=pk).update(definition=scrubbed)
            changed += 1
    return changed


def customer_delete(*, customer: Customer) -> None:
    """Delete the person's row itself. Called last: everything that referenced it was moved or unlinked
    (the deferred foreign keys check that at commit, and roll the whole erasure back otherwise). Not the
    ORM's cascade, which would look up every related table, the ranks by customer alone among them."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_tags_customer WHERE id = %s", [customer.pk])
