"""Loading customers (validated while streamed into a staging table, merged set-based) and the
member lists of manual tags."""

import json
import logging
from datetime import date
from typing import IO, Any

from django.db import connection, transaction
from django.utils.translation import gettext as _

from config.csv_import import ErrorCollector, ImportRejected, RowError, read_rows
from crm_tags import attribute_types
from crm_tags.identity.imports import IdentifierStage, identity_step
from crm_tags.identity.rules import identity_rules
from crm_tags.importers.bulk_indexes import CUSTOMER_INDEXES, _bulk_indexes
from crm_tags.importers.validation import (
    CUSTOMER_COLUMNS,
    EMAIL,
    LIMITS,
    ImportResult,
    ProgressCallback,
    _check_shape,
    _text,
    _too_long,
    parse_timestamp,
    raise_rejected,
    report_progress,
)
from privacy import consent

log = logging.getLogger(__name__)


def _attribute_columns(headers: list[str]) -> list[attribute_types.AttributeColumn]:
    """The free columns with their declared types (`vip_level:number`); a bad header rejects the file."""
    columns, errors, keys = [], [], {}
    for header in headers:
        try:
            col = attribute_types.column(header)
        except attribute_types.UnknownType as exc:
            errors.append(RowError(row=1, column=header, message=str(exc)))
            continue
        if not col.key:
            errors.append(RowError(row=1, column=header, message=_("Name the column before its type.")))
            continue
        if col.key in keys or col.key in CUSTOMER_COLUMNS:
            errors.append(RowError(row=1, column=header, message=_("Column appears twice in the header.")))
            continue
        keys[col.key] = header
        columns.append(col)
    if errors:
        raise ImportRejected(errors)
    return columns


@transaction.atomic
def import_customers(
    upload: IO[bytes] | IO[str], *, by: Any = None, progress: ProgressCallback | None = None
) -> ImportResult:
    """Load customers (new external ids are created, known ones updated), and their consent from the
    optional `consent_<purpose>` columns (an empty cell leaves it unchanged). The identifier columns
    (email, phone, wechat_unionid, member_no, wechat_openid with wechat_app_id) become identifiers of the
    rows' profiles, and profiles a row links merge (crm_tags.identity.imports). Call inside a transaction."""
    header, rows = read_rows(_text(upload), CUSTOMER_COLUMNS)
    last = header[-1]
    checked = [c for c in CUSTOMER_COLUMNS if c in LIMITS]
    # consent columns (names from a fixed list, safe in SQL) are staged beside the customer, not attributes
    consent_columns = {h: consent.IMPORT_COLUMNS[h] for h in header if h in consent.IMPORT_COLUMNS}
    extras = _attribute_columns([h for h in header if h not in CUSTOMER_COLUMNS and h not in consent_columns])
    errors = ErrorCollector()
    seen: dict[str, int] = {}
    count = 0
    rules = identity_rules()
    identifiers = IdentifierStage.for_header(header, rules)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE crm_stage_customers (row_no int, external_id text, name text, email text, "
            "phone text, city text, gender text, birth_date date, signup_at timestamptz, "
            "source_channel text, attributes jsonb" + "".join(f", {c} text" for c in consent_columns) + ") "
            "ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY crm_stage_customers (row_no, external_id, name, email, phone, city, gender, birth_date, "
            "signup_at, source_channel, attributes"
            + "".join(f", {c}" for c in consent_columns)
            + ") FROM STDIN"
        ) as copy:
            for number, record in rows:
                count += 1
                report_progress(progress, count)
                if errors.full or not _check_shape(number, record, last, errors):
                    continue
                values = {k: record[k].strip() for k in CUSTOMER_COLUMNS}
                bad = _too_long(number, record, checked, errors)
                external_id = values["external_id"]
                if not external_id:
                    errors.add(number, "external_id", _("Required."))
                    bad = True
                elif external_id in seen:
                    errors.add(
                        number,
                        "external_id",
                        _("Duplicate external id in the file (first on row %(row)d).")
                        % {"row": seen[external_id]},
                    )
                    bad = True
                else:
                    seen[external_id] = number
                if values["email"] and not EMAIL.match(values["email"]):
                    errors.add(number, "email", _("Not an e-mail address."))
                    bad = True
                birth_date = signup_at = None
                if values["birth_date"]:
                    try:
                        birth_date = date.fromisoformat(values["birth_date"])
                    except ValueError:
                        errors.add(number, "birth_date", _("Not a date (YYYY-MM-DD)."))
                        bad = True
                if values["signup_at"]:
                    try:
                        signup_at = parse_timestamp(values["signup_at"])
                    except ValueError:
                        errors.add(number, "signup_at", _("Not an ISO 8601 date or date-time."))
                        bad = True
                attributes = {}
                for col in extras:
                    raw = record[col.header]
                    if raw.strip():
                        problem = attribute_types.cell_problem(col, raw.strip())
                        if problem:
                            errors.add(number, col.header, problem)
                            bad = True
                    if raw != "":
                        attributes[col.key] = attribute_types.stored_text(col, raw)
                consents = []
                for column in consent_columns:
                    state = record[column].strip().lower()
                    if state and state not in consent.STATES:
                        # the cell is not echoed: the message names the row and column only
                        errors.add(number, column, _("Not a consent state (granted, withdrawn or unknown)."))
                        bad = True
                    consents.append(state or None)
                if bad or errors.errors:
                    continue
                copy.write_row(
                    (
                        number,
                        external_id,
                        values["name"],
                        values["email"] or None,
                        values["phone"] or None,
                        values["city"] or None,
                        values["gender"] or None,
                        birth_date,
                        signup_at,
                        values["source_channel"] or None,
                        json.dumps(attributes, ensure_ascii=False),
                        *consents,
                    )
                )
                identifiers.add(number, record)
        report_progress(progress, count, done=True)
        errors.raise_if_any()
        # numbers, booleans and dates become JSON numbers, booleans and ISO days in the one merge
        typed_attributes, typed_params = attribute_types.merge_expression(extras)
        with _bulk_indexes(cursor, "crm_tags_customer", CUSTOMER_INDEXES, count):
            cursor.execute(
                # the typed expression is fixed SQL; attribute keys go in as parameters
                "WITH merged AS (INSERT INTO crm_tags_customer (external_id, name, email, phone, city, gender, birth_date, "  # noqa: S608
                "signup_at, source_channel, attributes, created_at, updated_at) "
                "SELECT external_id, name, email, phone, city, gender, birth_date, signup_at, source_channel, "
                + typed_attributes
                + ", now(), now() FROM crm_stage_customers "
                "ON CONFLICT (external_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, "
                "phone = EXCLUDED.phone, city = EXCLUDED.city, gender = EXCLUDED.gender, "
                "birth_date = EXCLUDED.birth_date, signup_at = EXCLUDED.signup_at, "
                "source_channel = EXCLUDED.source_channel, "
                "attributes = crm_tags_customer.attributes || EXCLUDED.attributes, updated_at = now() "
                # a row the file repeats as it is stays untouched (and is counted as unchanged)
                "WHERE (crm_tags_customer.name, crm_tags_customer.email, crm_tags_customer.phone, "
                "crm_tags_customer.city, crm_tags_customer.gender, crm_tags_customer.birth_date, "
                "crm_tags_customer.signup_at, crm_tags_customer.source_channel, crm_tags_customer.attributes) "
                "IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.email, EXCLUDED.phone, EXCLUDED.city, "
                "EXCLUDED.gender, EXCLUDED.birth_date, EXCLUDED.signup_at, EXCLUDED.source_channel, "
                "crm_tags_customer.attributes || EXCLUDED.attributes) "
                "RETURNING (xmax = 0) AS inserted) "
                "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged",
                typed_params,
            )
            created, updated = cursor.fetchone()
        if consent_columns:
            consent.consents_import_staged(
                cursor=cursor, table="crm_stage_customers", columns=consent_columns, by=by
            )
        identity_step(cursor, stage=identifiers, rules=rules, by=by, customers="crm_stage_customers")
        cursor.execute("DROP TABLE crm_stage_customers")
    log.info("imported %s customers (%s new, %s changed)", count, created, updated)
    return ImportResult(rows=count, created=created, updated=updated, unchanged=count - created - updated)


def import_member_ids(upload: IO[bytes] | IO[str]) -> list[int]:
    """Customer ids of an uploaded list (column external_id) for a manual tag; unknown ids reject it."""
    header, rows = read_rows(_text(upload), ["external_id"])
    last = header[-1]
    errors = ErrorCollector()
    wanted: dict[str, int] = {}
    for number, record in rows:
        if errors.full or not _check_shape(number, record, last, errors):
            continue
        value = record["external_id"].strip()
        if not value:
            errors.add(number, "external_id", _("Required."))
        else:
            wanted.setdefault(value, number)
    errors.raise_if_any()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT x.ext, c.id FROM unnest(%s::text[]) AS x(ext) "
            "LEFT JOIN crm_tags_customer c ON c.external_id = x.ext",
            [list(wanted)],
        )
        found = cursor.fetchall()
    missing = sorted((wanted[ext], ext) for ext, cid in found if cid is None)
    if missing:
        raise_rejected(
            [
                RowError(row=r, column="external_id", message=_("Unknown customer %(id)s.") % {"id": e})
                for r, e in missing
            ]
        )
    return [cid for _ext, cid in found]
