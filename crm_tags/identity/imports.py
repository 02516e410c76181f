"""Identifiers in imports: a customer file's identifier columns become identifiers of the rows' profiles
(normalised while the rows stream, stored set-based from a staging table) and the profiles they link
merge; an events file may name each row's customer by an identifier column instead of its external id.

stage = import_identifier_stage(cursor)                       # before the rows stream
stage.add(external_id, import_identifiers(record, columns, rules))
staged_identifiers_resolve(cursor, stage=stage, by=user)        # after the customers are written
"""

# SQL is assembled from fixed fragments only; every value is a bound parameter.
# ruff: noqa: S608

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.utils.translation import gettext as _

from accounts.models import User
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

log = logging.getLogger(__name__)

# file column -> identifier kind, in the order an events row looks for its customer
IDENTIFIER_COLUMNS = {"email": EMAIL, "phone": PHONE, UNIONID: UNIONID, MEMBER_NO: MEMBER_NO, OPENID: OPENID}
# an openid is unique within one WeChat app: its app id comes from this column (or the value is app:openid)
APP_ID_COLUMN = "wechat_app_id"
STAGE = "crm_stage_identifiers"


@lru_cache(maxsize=100_000)
def _normalised(kind: str, value: str, app_id: str) -> str:
    return normalise(kind, value, app_id)


def identifier_columns(header: list[str]) -> list[str]:
    """The identifier columns a file has, in look-up order."""
    return [column for column in IDENTIFIER_COLUMNS if column in header]


def import_identifiers(
    record: dict[str, str], columns: list[str], rules: IdentityRules
) -> list[tuple[str, str]]:
    """A customer row's identifiers, normalised; a value that is not a valid identifier of its kind (a
    phone that is no number, an openid without app id) or a blocked one is left out, not an error: the
    cell is still stored as it is on the customer."""
    found = []
    for column in columns:
        raw = record[column].strip()
        kind = IDENTIFIER_COLUMNS[column]
        if not raw or kind not in rules.kinds:
            continue
        try:
            value = _normalised(kind, raw, record.get(APP_ID_COLUMN, "") if kind == OPENID else "")
        except IdentifierInvalid:
            continue
        if not rules.is_blocked(kind, value):
            found.append((kind, value))
    return found


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


@dataclass
class IdentifierStage:
    """The identifiers of a customer file's rows, kept while the rows stream into their own COPY."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, external_id: str, identifiers: list[tuple[str, str]]) -> None:
        self.rows.append((external_id, EXTERNAL_ID, external_id))
        self.rows.extend((external_id, kind, value) for kind, value in identifiers)


@dataclass
class StagedResolution:
    stored: int = 0
    linked: int = 0
    merged: int = 0


def _links_find(cursor: Any, rules: IdentityRules) -> list[int]:
    """The file's customers that share a merging identifier with another profile (stored identifiers,
    e-mail or phone columns in their common forms) or with another row: only these need the graph's
    resolution. Hash joins, one pass over each table."""
    merging = [kind for kind, rule in rules.kinds.items() if rule.merges]
    cursor.execute(
        f"""
        WITH m AS (SELECT customer_id, kind, value FROM {STAGE}_ids WHERE kind = ANY(%(merging)s)),
        digits AS (SELECT id, regexp_replace(phone, '[[:space:]().-]', '', 'g') AS p FROM crm_tags_customer
                   WHERE phone IS NOT NULL AND phone <> ''),
        held AS (
          SELECT customer_id AS id, kind, value FROM crm_tags_customeridentifier
          UNION ALL SELECT id, 'email', lower(btrim(email)) FROM crm_tags_customer
            WHERE email IS NOT NULL AND email <> ''
          UNION ALL SELECT id, 'phone', CASE WHEN p ~ '^1[3-9][0-9]{{9}}$' THEN '+86' || p
                                             WHEN p ~ '^00' THEN '+' || substr(p, 3)
                                             WHEN p ~ '^86[0-9]{{11}}$' THEN '+' || p ELSE p END FROM digits
          UNION ALL SELECT customer_id, kind, value FROM m)
        SELECT DISTINCT m.customer_id FROM m JOIN held h ON h.kind = m.kind AND h.value = m.value
        WHERE h.id <> m.customer_id
        """,
        {"merging": merging},
    )
    return [row[0] for row in cursor.fetchall()]


def _identifiers_store(cursor: Any, rules: IdentityRules) -> int:
    """Store the staged values nobody holds as identifiers of their (surviving) profile, within each
    kind's limit per profile counting what it holds already."""
    limits = {kind: rule.max_per_profile for kind, rule in rules.kinds.items() if rule.max_per_profile}
    cursor.execute(
        f"""
        INSERT INTO crm_tags_customeridentifier (customer_id, kind, value, created_at)
        SELECT customer_id, kind, value, now() FROM (
          SELECT n.customer_id, n.kind, n.value,
                 row_number() OVER (PARTITION BY n.customer_id, n.kind ORDER BY n.row_no, n.value)
                 + coalesce((SELECT count(*) FROM crm_tags_customeridentifier h
                             WHERE h.customer_id = n.customer_id AND h.kind = n.kind), 0) AS held
          FROM (SELECT DISTINCT ON (s.kind, s.value) s.customer_id, s.kind, s.value, s.row_no
                FROM {STAGE}_ids s JOIN crm_tags_customer c ON c.id = s.customer_id
                WHERE NOT EXISTS (SELECT 1 FROM crm_tags_customeridentifier i
                                  WHERE i.kind = s.kind AND i.value = s.value)
                ORDER BY s.kind, s.value, s.row_no) n
        ) ranked
        WHERE held <= coalesce((%(limits)s::jsonb ->> kind)::bigint, held)
        ON CONFLICT (kind, value) DO NOTHING
        """,
        {"limits": json.dumps(limits)},
    )
    return cursor.rowcount


def staged_identifiers_resolve(
    cursor: Any, *, stage: IdentifierStage, rules: IdentityRules, by: User | None
) -> StagedResolution:
    """After a customer file is written (same transaction): the profiles its rows link merge into the
    oldest (identity.batch.resolve_identities restricted to them: only when a row links any), then the
    row's identifiers are stored for its profile."""
    from crm_tags.identity.batch import resolve_identities

    result = StagedResolution()
    if not stage.rows:
        return result
    cursor.execute(
        f"CREATE TEMP TABLE {STAGE} (row_no int, external_id text, kind text, value text) ON COMMIT DROP"
    )
    with cursor.copy(f"COPY {STAGE} (row_no, external_id, kind, value) FROM STDIN") as copy:
        for number, row in enumerate(stage.rows):
            copy.write_row((number, *row))
    cursor.execute(
        f"CREATE TEMP TABLE {STAGE}_ids ON COMMIT DROP AS SELECT c.id AS customer_id, s.kind, s.value, s.row_no "
        f"FROM {STAGE} s JOIN crm_tags_customer c ON c.external_id = s.external_id"
    )
    cursor.execute(f"CREATE INDEX ON {STAGE}_ids (kind, value)")
    cursor.execute(f"ANALYZE {STAGE}_ids")
    linked = _links_find(cursor, rules)
    result.linked = len(linked)
    if linked:
        report = resolve_identities(by=by, only=set(linked))
        result.merged = report.merged
    result.stored = _identifiers_store(cursor, rules)
    cursor.execute(f"DROP TABLE {STAGE}_ids, {STAGE}")
    log.info(
        "import identifiers: %s stored, %s profiles linked, %s merged",
        result.stored,
        result.linked,
        result.merged,
    )
    return result
