"""Identifiers in imports: a customer file's identifier columns become identifiers of the rows' profiles
and the profiles they link merge; an events file may name each row's customer by an identifier column
instead of its external id.

stage = IdentifierStage.for_header(header, rules)          # before the rows stream
stage.add(number, record)                                  # each row written (its cells, as typed)
identity_step(cursor, stage=stage, rules=rules, by=user, customers="crm_stage_customers")  # after

The step is set-based and costs what the file brings: the cells are normalised column by column once
the rows have streamed, copied once into a staging table, stored with one statement (which also keeps
the few values not stored for their row: only these can link it to another profile) and the links found
with one more (never a statement or a look-up per row). A file whose rows carry no identifier value
skips all of it but one join (a new row whose external id was merged away before merges again). Only
the profiles the file links are merged (customers_merge per linked pair: few per import); links between
profiles already in the base are batch resolution's (crm_tags.identity.batch).
"""

# SQL is assembled from fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import User
from crm_tags.identity.merge import MergeRefused, customers_merge, tags_rebuild_after_merge
from crm_tags.identity.normalise import (
    EMAIL,
    EXTERNAL_ID,
    MEMBER_NO,
    OPENID,
    PHONE,
    UNIONID,
    IdentifierInvalid,
    normalise,
)
from crm_tags.identity.rules import IdentityRules
from crm_tags.models import Customer

log = logging.getLogger(__name__)

# file column -> identifier kind, in the order an events row looks for its customer
IDENTIFIER_COLUMNS = {"email": EMAIL, "phone": PHONE, UNIONID: UNIONID, MEMBER_NO: MEMBER_NO, OPENID: OPENID}
# an openid is unique within one WeChat app: its app id comes from this column (or the value is app:openid)
APP_ID_COLUMN = "wechat_app_id"
STAGE = "crm_stage_identifiers"
# the e-mail and phone columns of customers, in the common forms (how the base held them before identifiers)
EMAIL_COLUMN = "lower(btrim(email))"
PHONE_COLUMN = (
    "CASE WHEN p ~ '^1[3-9][0-9]{9}$' THEN '+86' || p WHEN p ~ '^00' THEN '+' || substr(p, 3) "
    "WHEN p ~ '^86[0-9]{11}$' THEN '+' || p ELSE p END"
)
PHONE_DIGITS = "regexp_replace(phone, '[[:space:]().-]', '', 'g')"


@lru_cache(maxsize=100_000)
def _normalised(kind: str, value: str, app_id: str) -> str:
    return normalise(kind, value, app_id)


def identifier_columns(header: list[str]) -> list[str]:
    """The identifier columns a file has, in look-up order."""
    return [column for column in IDENTIFIER_COLUMNS if column in header]


def event_row_identifier(
    record: dict[str, str], columns: list[str], rules: IdentityRules
) -> tuple[str, str, str] | None:
    """(column, kind, value) naming an events row's customer: its first non-empty identifier column.
    None when every one is empty; IdentifierInvalid (with `kind` set to the column) for a value that
    is not a valid identifier or is blocked."""
    for column in columns:
        raw = record[column].strip()
        if not raw:
            continue
        kind = IDENTIFIER_COLUMNS[column]
        try:
            value = _normalised(kind, raw, record.get(APP_ID_COLUMN, "") if kind == OPENID else "")
        except IdentifierInvalid as exc:
            raise IdentifierInvalid(column, exc.message) from exc
        if rules.is_blocked(kind, value):
            raise IdentifierInvalid(column, _("This value is on the block list of junk identifiers."))
        return column, kind, value
    return None


def _blocked_values(rules: IdentityRules, kind: str) -> frozenset[str]:
    """The folded values rules.is_blocked refuses for `kind` (its own list and the one for every kind)."""
    return frozenset(value for listed, value in rules.blocked if listed in (kind, ""))


def column_identifiers(
    kind: str, cells: list[str], app_ids: list[str] | None, rules: IdentityRules
) -> list[str | None]:
    """One column's cells as identifiers of `kind`, normalised, in the cells' order: None for an empty
    cell, a value that is not a valid identifier of its kind (a phone that is no number, an openid
    without app id) or a blocked one. Not an error: the cell is still stored as it is on the customer.
    The same forms as `normalise` and `rules.is_blocked`, a column at a time."""
    blocked = _blocked_values(rules, kind)

    def one(cell: str, app_id: str = "") -> str | None:
        raw = cell.strip()
        if not raw:
            return None
        try:
            value = normalise(kind, raw, app_id)
        except IdentifierInvalid:
            return None
        folded = value.strip().lower()
        if folded in blocked or (kind == OPENID and folded.partition(":")[2] in blocked):
            return None
        return value

    if kind == OPENID:
        return [one(cell, app_id) for cell, app_id in zip(cells, app_ids or [""] * len(cells), strict=True)]
    return [one(cell) for cell in cells]


@dataclass
class IdentifierStage:
    """The identifier cells of a customer file's written rows, kept as typed while the rows stream into
    their own COPY (normalised column by column afterwards)."""

    kinds: dict[str, str] = field(default_factory=dict)  # column -> kind, the columns the rules know
    rows: list[int] = field(default_factory=list)  # file row number of each kept row
    cells: dict[str, list[str]] = field(default_factory=dict)
    app_ids: list[str] = field(default_factory=list)
    any_value: bool = False

    @classmethod
    def for_header(cls, header: list[str], rules: IdentityRules) -> "IdentifierStage":
        kinds = {
            c: IDENTIFIER_COLUMNS[c]
            for c in identifier_columns(header)
            if IDENTIFIER_COLUMNS[c] in rules.kinds
        }
        return cls(kinds=kinds, cells={column: [] for column in kinds})

    def add(self, number: int, record: dict[str, str]) -> None:
        """A written row's identifier cells."""
        if not self.kinds:
            return
        self.rows.append(number)
        for column, cells in self.cells.items():
            cell = record[column]
            cells.append(cell)
            if cell and not self.any_value and cell.strip():
                self.any_value = True
        if OPENID in self.cells:
            self.app_ids.append(record.get(APP_ID_COLUMN) or "")

    def identifiers(self, rules: IdentityRules) -> list[tuple[int, str, str]]:
        """(row number, kind, normalised value) of every valid, unblocked identifier cell."""
        found = []
        for column, kind in self.kinds.items():
            values = column_identifiers(
                kind, self.cells[column], self.app_ids if kind == OPENID else None, rules
            )
            found.extend((row, kind, value) for row, value in zip(self.rows, values, strict=True) if value)
        return found


@dataclass
class StagedResolution:
    stored: int = 0
    linked: int = 0
    merged: int = 0
    refused: int = 0


def identity_step(
    cursor: Any, *, stage: IdentifierStage, rules: IdentityRules, by: User | None, customers: str
) -> StagedResolution:
    """After a customer file is written to crm_tags_customer (same transaction), with its rows still in
    the staging table `customers` (row_no, external_id): each row's identifiers (its external id among
    them) are stored for its profile, then the profiles they link merge into the oldest. A file whose
    rows hold no identifier value only re-links the rows whose external id another profile holds (a
    profile merged away before and imported again)."""
    identifiers = stage.identifiers(rules) if stage.any_value else []
    if not identifiers:
        return _merged_away_relink(cursor, rules=rules, by=by, customers=customers)
    # The statements below hash a few rows per file row: in memory, hash joins (a merge join sorts text
    # by the database's collation, several times slower), and not worth compiling.
    from crm_tags.importers.sql_session import _local_settings  # the importers import this module

    with _local_settings(cursor, jit="off", work_mem="64MB", enable_mergejoin="off"):
        return staged_identifiers_resolve(
            cursor, identifiers=identifiers, rules=rules, by=by, customers=customers
        )


def _merged_away_relink(
    cursor: Any, *, rules: IdentityRules, by: User | None, customers: str
) -> StagedResolution:
    """A row's external id held by another profile (it was merged into that one): the row's profile
    merges into it again. One join; nothing else for a file without identifier values."""
    result = StagedResolution()
    rule = rules.kinds.get(EXTERNAL_ID)
    if rule is None or not rule.merges:
        return result
    cursor.execute(
        f"SELECT c.id, i.customer_id FROM {customers} s "
        "JOIN crm_tags_customeridentifier i ON i.kind = %s AND i.value = s.external_id "
        "JOIN crm_tags_customer c ON c.external_id = s.external_id WHERE i.customer_id <> c.id",
        [EXTERNAL_ID],
    )
    edges = cursor.fetchall()
    if edges:
        _components_merge(edges=edges, rules=rules, by=by, result=result)
    return result


def staged_identifiers_resolve(
    cursor: Any,
    *,
    identifiers: list[tuple[int, str, str]],
    rules: IdentityRules,
    by: User | None,
    customers: str,
) -> StagedResolution:
    """Stage the rows' identifiers (with each row's external id) against their profiles, store those
    nobody holds, then merge the profiles they link (a merge moves the merged profile's identifiers, and
    refuses to pass a kind's limit: the limits count what both profiles hold, the file's values too)."""
    from crm_tags.importers.bulk_indexes import _bulk_indexes  # the importers import this module

    result = StagedResolution()
    cursor.execute(f"CREATE TEMP TABLE {STAGE} (row_no int, kind text, value text) ON COMMIT DROP")
    with cursor.copy(f"COPY {STAGE} (row_no, kind, value) FROM STDIN") as copy:
        copy.write("".join(f"{row}\t{kind}\t{_copy_text(value)}\n" for row, kind, value in identifiers))
    # each row's profile; its external id is an identifier of it like the others
    cursor.execute(
        f"CREATE TEMP TABLE {STAGE}_ids ON COMMIT DROP AS "
        f"WITH p AS MATERIALIZED (SELECT s.row_no, s.external_id, c.id FROM {customers} s "
        "JOIN crm_tags_customer c ON c.external_id = s.external_id) "
        f"SELECT p.id AS customer_id, i.kind, i.value, i.row_no FROM {STAGE} i JOIN p ON p.row_no = i.row_no "
        "UNION ALL SELECT p.id, %s, p.external_id, p.row_no FROM p",
        [EXTERNAL_ID],
    )
    staged = cursor.rowcount
    cursor.execute(f"ANALYZE {STAGE}_ids")
    # A big load rebuilds the indexes and the key once instead of a check and index inserts per row (the
    # table is locked meanwhile: no other transaction stores a value under the insert).
    with _bulk_indexes(
        cursor,
        "crm_tags_customeridentifier",
        ("crm_identifier_customer",),
        staged,
        unique=True,
        primary_key=True,
        keys_proven=True,
    ):
        result.stored = _identifiers_store(cursor, rules)
    edges = _links_find(cursor, rules, kinds={kind for _row, kind, _value in identifiers})
    if edges:
        _components_merge(edges=edges, rules=rules, by=by, result=result)
    cursor.execute(f"DROP TABLE {STAGE}_missed, {STAGE}_ids, {STAGE}")
    log.info(
        "import identifiers: %s stored, %s profiles linked, %s merged, %s refused",
        result.stored,
        result.linked,
        result.merged,
        result.refused,
    )
    return result


def _copy_text(value: str) -> str:
    """A value escaped for COPY's text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _identifiers_store(cursor: Any, rules: IdentityRules) -> int:
    """Store the staged values nobody holds as identifiers of their row's profile: a value two rows share
    goes to the first, and within each kind's limit per profile counting what it holds already (a file
    has one row per profile, one value of a kind per row). The staged values not stored for their row
    (held already, by this profile or another, or past a limit) are kept in {STAGE}_missed: only these
    can link the row to another profile. Returns how many were stored.

    One statement of hash joins, no look-up per row and no sort; a plain insert of what nobody held when
    it started (half the work of ON CONFLICT's speculative inserts): should another transaction store one
    of the values meanwhile, it is taken again with ON CONFLICT."""
    limits = {
        kind: rule.max_per_profile for kind, rule in rules.kinds.items() if rule.max_per_profile is not None
    }
    cursor.execute(
        f"CREATE TEMP TABLE {STAGE}_missed (customer_id bigint, kind text, value text) ON COMMIT DROP"
    )
    statement = f"""
        WITH stored AS (
          INSERT INTO crm_tags_customeridentifier (customer_id, kind, value, created_at)
          SELECT n.customer_id, n.kind, n.value, now() FROM {STAGE}_ids n
          LEFT JOIN (SELECT h.customer_id, h.kind, count(*) AS held FROM crm_tags_customeridentifier h
                     WHERE h.customer_id IN (SELECT customer_id FROM {STAGE}_ids) AND h.kind = ANY(%(limited)s)
                     GROUP BY h.customer_id, h.kind) h
            ON h.customer_id = n.customer_id AND h.kind = n.kind
          WHERE NOT EXISTS (SELECT 1 FROM crm_tags_customeridentifier i WHERE i.kind = n.kind AND i.value = n.value)
            AND NOT EXISTS (SELECT 1 FROM {STAGE}_ids e WHERE e.kind = n.kind AND e.value = n.value AND e.row_no < n.row_no)
            AND coalesce(h.held, 0) < coalesce((%(limits)s::jsonb ->> n.kind)::bigint, coalesce(h.held, 0) + 1)
          {{conflict}}
          RETURNING customer_id, kind, value)
        INSERT INTO {STAGE}_missed (customer_id, kind, value)
        SELECT s.customer_id, s.kind, s.value FROM {STAGE}_ids s
        WHERE NOT EXISTS (SELECT 1 FROM stored WHERE stored.kind = s.kind AND stored.value = s.value
                          AND stored.customer_id = s.customer_id)
        """
    params = {"limits": json.dumps(limits), "limited": list(limits)}
    try:
        with transaction.atomic():
            cursor.execute(statement.replace("{conflict}", ""), params)
    except IntegrityError:  # a value stored by another transaction since this one's snapshot
        cursor.execute(statement.replace("{conflict}", "ON CONFLICT (kind, value) DO NOTHING"), params)
    missed = cursor.rowcount
    cursor.execute(f"SELECT count(*) FROM {STAGE}_ids")
    return cursor.fetchone()[0] - missed


def _links_find(cursor: Any, rules: IdentityRules, *, kinds: set[str]) -> list[tuple[int, int]]:
    """(row's profile, other profile) sharing a merging identifier, once the file's are stored: a value
    another profile holds (another row's of the file among them), or another customer's e-mail or phone
    column in its common forms. One statement: index look-ups of the few values not stored for their row,
    and hash joins against the customer table, read once for each of the two columns the file has
    values for."""
    merging = [kind for kind, rule in rules.kinds.items() if rule.merges]
    parts = [
        # only a value not stored for its row can be another profile's (or another row's)
        f"SELECT s.customer_id, i.customer_id FROM {STAGE}_missed s JOIN crm_tags_customeridentifier i "
        "ON i.kind = s.kind AND i.value = s.value WHERE i.customer_id <> s.customer_id "
        "AND s.kind = ANY(%(merging)s)"
    ]
    if EMAIL in merging and EMAIL in kinds:
        parts.append(
            f"SELECT m.customer_id, c.id FROM m JOIN (SELECT id, {EMAIL_COLUMN} AS value FROM crm_tags_customer "
            "WHERE email <> '') c ON c.value = m.value WHERE m.kind = 'email' AND c.id <> m.customer_id"
        )
    if PHONE in merging and PHONE in kinds:
        parts.append(
            f"SELECT m.customer_id, c.id FROM m JOIN (SELECT id, {PHONE_COLUMN} AS value FROM "
            # OFFSET 0: the digits are worked out once per row, not once per WHEN
            f"(SELECT id, {PHONE_DIGITS} AS p FROM crm_tags_customer WHERE phone <> '' OFFSET 0) d) c "
            "ON c.value = m.value WHERE m.kind = 'phone' AND c.id <> m.customer_id"
        )
    cursor.execute(
        f"WITH m AS MATERIALIZED (SELECT customer_id, kind, value FROM {STAGE}_ids WHERE kind = ANY(%(merging)s)) "
        + " UNION ".join(parts),
        {"merging": merging},
    )
    return cursor.fetchall()


def _components(edges: list[tuple[int, int]]) -> list[set[int]]:
    """The connected components of the linked profiles (a small graph: only what the file links)."""
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    groups: dict[int, set[int]] = {}
    for node in parent:
        groups.setdefault(find(node), set()).add(node)
    return list(groups.values())


def _components_merge(
    *, edges: list[tuple[int, int]], rules: IdentityRules, by: User | None, result: StagedResolution
) -> None:
    """Each linked group merges into its oldest profile, one pair at a time (customers_merge refuses a
    pair that would pass a kind's limit per profile: the two stay apart and it is counted)."""
    groups = _components(edges)
    result.linked = sum(len(group) for group in groups)
    profiles = {c.pk: c for c in Customer.objects.filter(pk__in=[pk for group in groups for pk in group])}
    for group in groups:
        ordered = sorted((profiles[pk] for pk in group if pk in profiles), key=lambda c: (c.created_at, c.pk))
        for loser in ordered[1:]:
            try:
                customers_merge(
                    survivor=ordered[0], loser=loser, by=by, source="import", rules=rules, rebuild=False
                )
            except MergeRefused:
                result.refused += 1
            else:
                result.merged += 1
    if result.merged:
        tags_rebuild_after_merge()
