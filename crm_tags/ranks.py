"""Ranked event times: what lets a "count of T >= k in the last N days" leaf read only its matches.

For every (event type, k) pair that some rule version drives a statement with (see
`rules.ranked_leaf`), `crm_tags_eventrank` holds each customer's k-th most recent event time of that
type. The pairs are registered with all their ranks in one transaction (`sync`); from then on the
ranks are exact in the transaction that writes events: statement triggers refresh the touched
customers, and a bulk import, which switches its trigger off, computes them itself (`kth_latest` on
a first load, a refresh of the touched customers otherwise).

Writers of the same ranked event type take turns: the trigger takes an advisory lock per ranked type it
touches (WRITERS_LOCK_NAMESPACE, held to commit) before it refreshes, so a second import of the same
customers waits for the first to commit and then computes from both (migration 0012). A bulk import
needs no such lock: it holds the events table exclusively while it keeps the ranks.
"""

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from django.db import connection, transaction

from crm_tags.models import RankedCount, TagVersion
from crm_tags.rules import ranked_leaf

log = logging.getLogger(__name__)

INSERT_TRIGGER = "crm_tags_event_ranks_insert"
# pg_advisory_xact_lock(WRITERS_LOCK_NAMESPACE, hashtext(event_type)): the ranks trigger's turn per type
WRITERS_LOCK_NAMESPACE = 7302


def pairs_of(definitions: Iterable[Any]) -> set[tuple[str, int]]:
    """The (event type, k) pairs the rules drive a statement with."""
    found = set()
    for definition in definitions:
        leaf = ranked_leaf(definition)
        if leaf is not None:
            found.add((leaf[0]["event"], leaf[1]))
    return found


def registered() -> dict[str, list[int]]:
    """The registered ks per event type (read after taking the events lock, so it is current)."""
    pairs: dict[str, list[int]] = {}
    for event_type, k in RankedCount.objects.order_by("event_type", "k").values_list("event_type", "k"):
        pairs.setdefault(event_type, []).append(k)
    return pairs


@transaction.atomic
def sync() -> tuple[int, int]:
    """Register the pairs that rule versions need, each with all its ranks, and drop the ones no
    version needs any more. Holds the events' SHARE ROW EXCLUSIVE lock (imports and another sync
    wait; reads do not), so no event is written between computing a pair's ranks and registering it,
    and two syncs never add the same pair. Returns (added, dropped)."""
    needed = pairs_of(TagVersion.objects.values_list("definition", flat=True).iterator())
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE crm_tags_event IN SHARE ROW EXCLUSIVE MODE")
        have = set(RankedCount.objects.values_list("event_type", "k"))
        for event_type, k in sorted(have - needed):
            RankedCount.objects.filter(event_type=event_type, k=k).delete()
            cursor.execute("DELETE FROM crm_tags_eventrank WHERE event_type = %s AND k = %s", [event_type, k])
        for event_type, k in sorted(needed - have):
            # only customers with at least k such events have a k-th one: the totals name them
            cursor.execute(
                "INSERT INTO crm_tags_eventrank (event_type, k, customer_id, occurred_at) "
                "SELECT t.event_type, %s, t.customer_id, x.occurred_at FROM crm_tags_customereventtotal t "
                "CROSS JOIN LATERAL (SELECT e.occurred_at FROM crm_tags_event e WHERE e.customer_id = "
                "t.customer_id AND e.event_type = t.event_type ORDER BY e.occurred_at DESC OFFSET %s LIMIT 1) x "
                "WHERE t.event_type = %s AND t.events >= %s",
                [k, k - 1, event_type, k],
            )
            log.info("ranks of %s #%s registered: %s customers", event_type, k, cursor.rowcount)
            RankedCount.objects.create(event_type=event_type, k=k)
    return len(needed - have), len(have - needed)


def refresh(cursor: Any, customer_ids: Any, event_types: Any) -> None:
    """Recompute the ranks of these (customer, event type) pairs from their events."""
    cursor.execute("SELECT crm_tags_refresh_ranks(%s::bigint[], %s::text[])", [customer_ids, event_types])


def kth_latest(customers: np.ndarray, times: np.ndarray, ks: list[int]) -> Iterator[tuple[int, Any, Any]]:
    """(k, customer ids, k-th latest times) for each k: per customer, the k-th largest of its times
    (repeats count), for the customers with at least k. The times are integers (microseconds).

    One sort of 64-bit keys (customer in the high bits, time in the low ones) puts each customer's
    times in order; when both do not fit in 63 bits the customers are split into ranges that do."""
    if not len(customers):
        return
    low = int(times.min())
    offsets = times - low
    time_bits = max(int(offsets.max()).bit_length(), 1)
    first_customer = int(customers.min())
    relative = customers - first_customer
    customer_bits = 63 - time_bits
    ranges = (int(relative.max()) >> customer_bits) + 1
    if ranges > 64:  # sparse ids and a long span: sort by the two columns instead
        order = np.lexsort((offsets, relative))
        parts = [(relative[order], offsets[order])]
    else:
        parts = []
        for part in range(ranges):
            chosen = (relative >> customer_bits) == part if ranges > 1 else slice(None)
            keys = np.sort(((relative[chosen] - (part << customer_bits)) << time_bits) | offsets[chosen])
            parts.append(((keys >> time_bits) + (part << customer_bits), keys & ((1 << time_bits) - 1)))
    found: dict[int, list[tuple[Any, Any]]] = {k: [] for k in ks}
    for group, offset in parts:
        last = np.flatnonzero(np.append(group[1:] != group[:-1], True))  # each customer's newest
        size = np.diff(last, prepend=-1)
        for k in ks:
            enough = size >= k
            found[k].append((group[last[enough]], offset[last[enough] - (k - 1)]))
    for k in ks:
        yield (
            k,
            np.concatenate([g for g, _ in found[k]]) + first_customer,
            np.concatenate([o for _, o in found[k]]) + low,
        )
