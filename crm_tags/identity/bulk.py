"""Many merges at once, set-based: what `customers_merge` does for one pair, done for a whole batch of
(survivor, merged) pairs with one statement per table.

The pairs come in merge order (a survivor's merged profiles oldest first, as `resolve_identities` finds
them). Each pair gets its own merge record, the same as `customers_merge` would have written had it
merged the pairs one after another in that order, so `customers_unmerge` undoes any of them. The batch's
pairs are staged in a temporary table; every move is an `UPDATE … FROM` that stage returning what moved
per merged profile; the merged rows and the rows unique per customer are kept as JSON built in SQL; the
merge records are inserted with one `INSERT … SELECT`. Consent is the one step taken pair by pair, and
only for the merged profiles that hold any (the rest leave the survivor's consent as it was).

The caller checks the limits per kind first: a batch holds only pairs that may merge.
"""

# SQL is assembled from fixed fragments and model metadata only; every value is a bound parameter.
# ruff: noqa: S608

import logging
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from accounts.models import User
from accounts.services import audit_record
from crm_tags.identity.merge import consent_merge, other_relations
from crm_tags.identity.normalise import EXTERNAL_ID
from crm_tags.models import Customer
from crm_tags.retention import RECOMPUTE

log = logging.getLogger(__name__)

STAGE = "crm_bulk_merge"
MOVED = "crm_bulk_moved"
# jsonb_build_object takes at most 100 arguments: 50 columns per call
_COLUMNS_PER_OBJECT = 50


def snapshot_sql(model: type[models.Model], alias: str) -> str:
    """A SQL expression giving the row `alias` as `row_snapshot` keeps it ({"model", "fields"}), so that
    `row_restore` puts it back: times as ISO text at full precision, decimals as text, JSON as it is."""
    parts = []
    for field in model._meta.concrete_fields:
        column = f'{alias}."{field.column}"'
        if isinstance(field, models.DecimalField | models.UUIDField | models.BinaryField):
            column = f"{column}::text"
        parts.append(f"'{field.attname}', {column}")
    chunks = [parts[i : i + _COLUMNS_PER_OBJECT] for i in range(0, len(parts), _COLUMNS_PER_OBJECT)]
    fields = " || ".join(f"jsonb_build_object({', '.join(chunk)})" for chunk in chunks)
    return f"jsonb_build_object('model', '{model._meta.label_lower}', 'fields', {fields})"


def _stage(cursor: Any, pairs: list[tuple[int, int]]) -> None:
    """The pairs, in merge order, with both external ids and the merged row's snapshot; pairs whose
    profiles are gone meanwhile are dropped. Both sides are locked in id order, as `customers_merge`
    locks them."""
    cursor.execute(
        f"CREATE TEMP TABLE {STAGE} (ord int PRIMARY KEY, survivor bigint NOT NULL, loser bigint NOT NULL, "
        "survivor_ext text, loser_ext text, snapshot jsonb, first_of_survivor bool) ON COMMIT DROP"
    )
    with cursor.copy(f"COPY {STAGE} (ord, survivor, loser) FROM STDIN") as copy:
        for ord_, (survivor, loser) in enumerate(pairs):
            copy.write_row((ord_, survivor, loser))
    cursor.execute(
        "SELECT id FROM crm_tags_customer WHERE id IN "
        f"(SELECT survivor FROM {STAGE} UNION SELECT loser FROM {STAGE}) ORDER BY id FOR UPDATE"
    )
    cursor.execute(
        f"UPDATE {STAGE} m SET survivor_ext = s.external_id, loser_ext = l.external_id, "
        f"snapshot = {snapshot_sql(Customer, 'l')} "
        "FROM crm_tags_customer s, crm_tags_customer l WHERE s.id = m.survivor AND l.id = m.loser"
    )
    cursor.execute(f"DELETE FROM {STAGE} WHERE snapshot IS NULL")
    cursor.execute(
        f"UPDATE {STAGE} m SET first_of_survivor = (m.ord = f.ord) FROM "
        f"(SELECT survivor, min(ord) AS ord FROM {STAGE} GROUP BY survivor) f WHERE f.survivor = m.survivor"
    )
    cursor.execute(f"CREATE INDEX ON {STAGE} (loser)")
    cursor.execute(f"CREATE INDEX ON {STAGE} (survivor)")
    cursor.execute(f"ANALYZE {STAGE}")
    cursor.execute(
        f"CREATE TEMP TABLE {MOVED} (loser bigint NOT NULL, key text NOT NULL, value jsonb) ON COMMIT DROP"
    )


def _identifiers_add(cursor: Any) -> None:
    """Each merged profile's external id becomes an identifier of its survivor (so it still resolves;
    the survivor's own resolves through its row); an unmerge takes it away again. Run after the merged
    profiles' identifiers moved: it is stored as the survivor's at once."""
    cursor.execute(
        "WITH added AS (INSERT INTO crm_tags_customeridentifier (kind, value, customer_id, created_at) "
        f"SELECT %s, m.loser_ext, m.survivor, now() FROM {STAGE} m ORDER BY m.loser_ext "
        "ON CONFLICT DO NOTHING RETURNING id, value) "
        f"INSERT INTO {MOVED} (loser, key, value) "
        f"SELECT m.loser, 'identifiers_added', jsonb_build_array(a.id) FROM added a JOIN {STAGE} m "
        "ON m.loser_ext = a.value",
        [EXTERNAL_ID],
    )


def _events_move(cursor: Any) -> None:
    """Every merged profile's events go to its survivor; both sides' lifetime totals are recomputed (the
    events' update trigger refreshes their ranks)."""
    cursor.execute("LOCK TABLE crm_tags_event IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute(
        "CREATE TEMP TABLE crm_bulk_events ON COMMIT DROP AS WITH moved AS ("
        f"UPDATE crm_tags_event e SET customer_id = m.survivor FROM {STAGE} m WHERE e.customer_id = m.loser "
        "RETURNING e.id, e.event_type, m.loser, m.survivor) SELECT * FROM moved"
    )
    cursor.execute(
        f"INSERT INTO {MOVED} (loser, key, value) "
        "SELECT loser, 'events', jsonb_agg(id ORDER BY id) FROM crm_bulk_events GROUP BY loser"
    )
    cursor.execute(
        "SELECT event_type, array_agg(DISTINCT c) FROM crm_bulk_events, unnest(ARRAY[loser, survivor]) c "
        "GROUP BY event_type ORDER BY event_type"
    )
    for event_type, customers in cursor.fetchall():
        cursor.execute(RECOMPUTE, {"customers": customers, "type": event_type})
    cursor.execute("DROP TABLE crm_bulk_events")


def _memberships_move(cursor: Any) -> None:
    """Memberships move to the survivor. Where the survivor is a member already, or an earlier merged
    profile of the same survivor brought the tag, the row goes (the tag counts one member fewer), as the
    pairs merged one by one would have it. Tags are locked in id order first, as builds do."""
    cursor.execute(
        "SELECT id FROM crm_tags_tag WHERE id IN (SELECT tag_id FROM crm_tags_tagmembership WHERE customer_id "
        f"IN (SELECT survivor FROM {STAGE} UNION SELECT loser FROM {STAGE})) ORDER BY id FOR UPDATE"
    )
    cursor.execute(
        "CREATE TEMP TABLE crm_bulk_dropped ON COMMIT DROP AS "
        "SELECT x.loser, x.tag_id, x.since FROM ("
        "  SELECT m.loser, t.tag_id, t.since, EXISTS (SELECT 1 FROM crm_tags_tagmembership o "
        "         WHERE o.tag_id = t.tag_id AND o.customer_id = m.survivor) AS held, "
        "         row_number() OVER (PARTITION BY m.survivor, t.tag_id ORDER BY m.ord) AS nth "
        f"  FROM crm_tags_tagmembership t JOIN {STAGE} m ON t.customer_id = m.loser) x "
        "WHERE x.held OR x.nth > 1"
    )
    cursor.execute(
        "DELETE FROM crm_tags_tagmembership t USING crm_bulk_dropped d "
        "WHERE t.customer_id = d.loser AND t.tag_id = d.tag_id"
    )
    cursor.execute(
        "UPDATE crm_tags_tag t SET members_count = GREATEST(t.members_count - d.n, 0) "
        "FROM (SELECT tag_id, count(*) AS n FROM crm_bulk_dropped GROUP BY tag_id) d WHERE t.id = d.tag_id"
    )
    cursor.execute(
        f"INSERT INTO {MOVED} (loser, key, value) "
        "SELECT loser, 'memberships.dropped', jsonb_agg(jsonb_build_array(tag_id, since) ORDER BY tag_id) "
        "FROM crm_bulk_dropped GROUP BY loser"
    )
    cursor.execute(
        "WITH moved AS (UPDATE crm_tags_tagmembership t SET customer_id = m.survivor "
        f"FROM {STAGE} m WHERE t.customer_id = m.loser RETURNING m.loser, t.tag_id) "
        f"INSERT INTO {MOVED} (loser, key, value) "
        "SELECT loser, 'memberships.moved', jsonb_agg(tag_id ORDER BY tag_id) FROM moved GROUP BY loser"
    )
    cursor.execute("DROP TABLE crm_bulk_dropped")


def _consent_merge(cursor: Any) -> None:
    """Consent pair by pair, in merge order, for the merged profiles that hold any (few)."""
    cursor.execute(
        f"SELECT m.survivor, m.loser FROM {STAGE} m WHERE EXISTS "
        "(SELECT 1 FROM privacy_consent c WHERE c.customer_id = m.loser) ORDER BY m.ord"
    )
    rows = []
    for survivor, loser in cursor.fetchall():
        moved: dict[str, Any] = {}
        consent_merge(survivor=survivor, loser=loser, moved=moved)
        rows.append((loser, "consent", Jsonb(moved["consent"])))
    if rows:
        cursor.executemany(f"INSERT INTO {MOVED} (loser, key, value) VALUES (%s, %s, %s)", rows)


def _touchpoints_move(cursor: Any) -> None:
    """Campaign touchpoints and conversions are keyed by external id: they follow the person."""
    from campaigns.models import Conversion, Touchpoint

    for model in (Touchpoint, Conversion):
        cursor.execute(
            f"WITH moved AS (UPDATE {model._meta.db_table} t SET customer_external_id = m.survivor_ext "
            f"FROM {STAGE} m WHERE t.customer_external_id = m.loser_ext RETURNING t.id, m.loser) "
            f"INSERT INTO {MOVED} (loser, key, value) "
            "SELECT loser, %s, jsonb_agg(id ORDER BY id) FROM moved GROUP BY loser",
            [f"{model._meta.label_lower}:external_id"],
        )


def _other_rows_move(cursor: Any) -> None:
    """Every other table pointing at customers: rows move (ids kept); rows unique per customer go, kept
    whole in the record."""
    for model, field_name, unique in other_relations():
        table, column = model._meta.db_table, model._meta.get_field(field_name).column
        label, pk = model._meta.label_lower, model._meta.pk.column
        if unique:
            cursor.execute(
                f"WITH gone AS (DELETE FROM {table} r USING {STAGE} m WHERE r.{column} = m.loser "
                f"RETURNING m.loser, {snapshot_sql(model, 'r')} AS row) "
                f"INSERT INTO {MOVED} (loser, key, value) "
                "SELECT loser, %s, jsonb_agg(row) FROM gone GROUP BY loser",
                [f"deleted:{label}"],
            )
        else:
            cursor.execute(
                f"WITH moved AS (UPDATE {table} r SET {column} = m.survivor FROM {STAGE} m "
                f"WHERE r.{column} = m.loser RETURNING r.{pk} AS id, m.loser) "
                f"INSERT INTO {MOVED} (loser, key, value) "
                "SELECT loser, %s, jsonb_agg(id ORDER BY id) FROM moved GROUP BY loser",
                [label],
            )


# moved = the keys every record has, then each step's, with the memberships and the deleted rows nested
_RECORDS = f"""
WITH parts AS (
    SELECT loser,
           jsonb_object_agg(key, value) FILTER (WHERE key NOT LIKE 'deleted:%%' AND key NOT LIKE 'memberships.%%')
               AS flat,
           jsonb_object_agg(substr(key, 9), value) FILTER (WHERE key LIKE 'deleted:%%') AS deleted,
           jsonb_object_agg(substr(key, 13), value) FILTER (WHERE key LIKE 'memberships.%%') AS memberships
    FROM {MOVED} GROUP BY loser
)
INSERT INTO crm_tags_customermerge
    (survivor_id, merged_external_id, merged_customer_id, snapshot, moved, source, by_id, at)
SELECT m.survivor, m.loser_ext, m.loser, m.snapshot,
       jsonb_build_object('identifiers_added', '[]'::jsonb, 'events', '[]'::jsonb,
                          'consent', jsonb_build_object('survivor', NULL, 'merged', '[]'::jsonb))
       || COALESCE(p.flat, '{{}}')
       || jsonb_build_object('memberships', jsonb_build_object('moved', '[]'::jsonb, 'dropped', '[]'::jsonb)
                                            || COALESCE(p.memberships, '{{}}'))
       || CASE WHEN p.deleted IS NULL THEN '{{}}'::jsonb ELSE jsonb_build_object('deleted', p.deleted) END,
       %(source)s, %(by)s, %(at)s
FROM {STAGE} m LEFT JOIN parts p ON p.loser = m.loser
ORDER BY m.ord
RETURNING id, survivor_id, merged_external_id
"""


@transaction.atomic
def customers_merge_bulk(
    *, pairs: list[tuple[int, int]], by: User | None, source: str = "batch"
) -> dict[int, int]:
    """Merge each pair's second profile into its first (ids, in merge order; a survivor is never merged
    itself in the same batch). Returns merged id -> survivor id for the pairs merged (a pair whose
    profile is gone meanwhile is skipped). Does not rebuild tags: the caller does, once."""
    if not pairs:
        return {}
    survivors = {survivor for survivor, _loser in pairs}
    losers = [loser for _survivor, loser in pairs]
    if len(set(losers)) != len(losers) or not survivors.isdisjoint(losers):
        raise ValueError(
            "each profile is merged at most once, and a survivor is not merged in the same batch"
        )
    by = by if by is not None and by.pk else None
    with connection.cursor() as cursor:
        _stage(cursor, pairs)
        _events_move(cursor)
        _memberships_move(cursor)
        _consent_merge(cursor)
        _touchpoints_move(cursor)
        _other_rows_move(cursor)
        _identifiers_add(cursor)
        cursor.execute(f"DELETE FROM crm_tags_customer WHERE id IN (SELECT loser FROM {STAGE})")
        cursor.execute(_RECORDS, {"source": source, "by": by.pk if by else None, "at": timezone.now()})
        records = cursor.fetchall()
        cursor.execute(f"SELECT loser, survivor, survivor_ext FROM {STAGE}")
        staged = cursor.fetchall()
        cursor.execute(f"DROP TABLE {STAGE}, {MOVED}")
    merged = {loser: survivor for loser, survivor, _ext in staged}
    if records:
        into = {survivor: ext for _loser, survivor, ext in staged}
        audit_record(
            actor=by,
            action="crm.customer_merge_batch",
            object_type="crm_tags.customermerge",
            object_id=f"{records[0][0]}-{records[-1][0]}",
            changes={
                "source": source,
                "merges": len(records),
                # merge id, merged external id, survivor's external id: no personal values
                "merged": [
                    [merge_id, merged_ext, into[survivor]] for merge_id, survivor, merged_ext in records
                ],
            },
        )
    log.info("bulk merge: %s profiles merged into %s", len(merged), len(set(merged.values())))
    return merged
