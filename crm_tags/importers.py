"""Bulk loading of customers and events, all in the caller's transaction, so a file with any bad row
writes nothing and the per-customer totals never drift. Customers: every row validated while it is
streamed into a staging table, then merged set-based (INSERT ... ON CONFLICT). Events: a plain file is
checked and typed by Arrow and streamed straight into COPY; any other file, or one the fast checks find
a problem in, goes through the row-by-row validator that names every bad row.
"""

import io
import itertools
import json
import logging
import os
import re
import threading
import time as time_module
import zoneinfo
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db import DataError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg import errors as pg_errors
from psycopg.copy import QueuedLibpqWriter
from pyarrow import csv as pa_csv

from config.csv_import import MAX_ERRORS, ErrorCollector, ImportRejected, RowError, read_rows
from crm_tags import attribute_types, ranks
from crm_tags.models import CUSTOMER_FILE_COLUMNS
from privacy import consent

log = logging.getLogger(__name__)

CUSTOMER_COLUMNS = list(CUSTOMER_FILE_COLUMNS)
EVENT_COLUMNS = ["customer_external_id", "event_type", "occurred_at", "amount", "channel"]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_AMOUNT = Decimal("999999999999.99")
LIMITS = {"external_id": 64, "name": 200, "email": 254, "phone": 32, "city": 100, "gender": 16}
LIMITS |= {"source_channel": 64, "channel": 64, "customer_external_id": 64}


TOTALS_MERGE = (
    "events = crm_tags_customereventtotal.events + EXCLUDED.events, "
    "amount_count = crm_tags_customereventtotal.amount_count + EXCLUDED.amount_count, "
    "amount_sum = CASE WHEN crm_tags_customereventtotal.amount_sum IS NULL THEN EXCLUDED.amount_sum "
    "WHEN EXCLUDED.amount_sum IS NULL THEN crm_tags_customereventtotal.amount_sum "
    "ELSE crm_tags_customereventtotal.amount_sum + EXCLUDED.amount_sum END, "
    "amount_min = LEAST(crm_tags_customereventtotal.amount_min, EXCLUDED.amount_min), "
    "amount_max = GREATEST(crm_tags_customereventtotal.amount_max, EXCLUDED.amount_max), "
    "first_at = LEAST(crm_tags_customereventtotal.first_at, EXCLUDED.first_at), "
    "last_at = GREATEST(crm_tags_customereventtotal.last_at, EXCLUDED.last_at) "
)


@contextmanager
def _step(name: str) -> Iterator[None]:
    started = time_module.perf_counter()
    yield
    log.debug("import step %s took %.3fs", name, time_module.perf_counter() - started)


@contextmanager
def _local_settings(cursor: Any, **settings: str) -> Iterator[None]:
    """Planner settings for the statements inside, restored after (the transaction goes on)."""
    names = list(settings)
    cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
    previous = cursor.fetchone()
    for name, value in settings.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
    yield
    for name, value in zip(names, previous, strict=True):
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int = 0
    updated: int = 0
    customers: int = 0


def parse_timestamp(value: str) -> datetime:
    """ISO 8601, or a plain date meaning midnight in the default time zone."""
    if len(value) == 10:
        parsed = datetime.combine(date.fromisoformat(value), time.min)
    else:
        parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def _text(upload: IO[bytes] | IO[str]) -> IO[str]:
    """A fast UTF-8 text stream (a BOM dropped) for the CSV reader; text streams pass through."""
    if isinstance(upload, io.TextIOBase):
        return upload
    raw = getattr(upload, "file", upload)
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


NULL = "\\N"


def _copy_text(value: str) -> str:
    """A value escaped for COPY's text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _check_shape(number: int, record: dict, last: str, errors: ErrorCollector) -> bool:
    # DictReader fills missing cells from the end with None and files extra cells under the key None
    if None in record or record[last] is None:
        errors.add(number, "", _("The row has a different number of cells than the header."))
        return False
    return True


def _too_long(number: int, record: dict, columns: list[str], errors: ErrorCollector) -> bool:
    bad = False
    for column in columns:
        if len(record[column]) > LIMITS[column]:
            errors.add(number, column, _("Longer than %(limit)d characters.") % {"limit": LIMITS[column]})
            bad = True
    return bad


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
def import_customers(upload: IO[bytes] | IO[str], *, by: Any = None) -> ImportResult:
    """Load customers (new external ids are created, known ones updated), and their consent from the
    optional `consent_<purpose>` columns (an empty cell leaves it unchanged). Call inside a transaction."""
    header, rows = read_rows(_text(upload), CUSTOMER_COLUMNS)
    last = header[-1]
    checked = [c for c in CUSTOMER_COLUMNS if c in LIMITS]
    # consent columns (names from a fixed list, safe in SQL) are staged beside the customer, not attributes
    consent_columns = {h: consent.IMPORT_COLUMNS[h] for h in header if h in consent.IMPORT_COLUMNS}
    extras = _attribute_columns([h for h in header if h not in CUSTOMER_COLUMNS and h not in consent_columns])
    errors = ErrorCollector()
    seen: dict[str, int] = {}
    count = 0
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
                "RETURNING (xmax = 0) AS inserted) SELECT count(*) FILTER (WHERE inserted) FROM merged",
                typed_params,
            )
            created = cursor.fetchone()[0]
        if consent_columns:
            consent.consents_import_staged(
                cursor=cursor, table="crm_stage_customers", columns=consent_columns, by=by
            )
        cursor.execute("DROP TABLE crm_stage_customers")
    log.info("imported %s customers (%s new)", count, created)
    return ImportResult(rows=count, created=created, updated=count - created)


# A load at least this big, and bigger than a fifth of the table, rebuilds the secondary indexes
# instead of inserting into them row by row (random index inserts dominate big loads).
BULK_MIN_ROWS = 200_000
EVENT_INDEXES = ("crm_event_cust_at", "crm_event_type_at_cover")
CUSTOMER_INDEXES = (
    "crm_customer_city",
    "crm_customer_signup",
    "crm_customer_name_trgm",
    "crm_customer_email_trgm",
)


@contextmanager
def _bulk_indexes(
    cursor: Any,
    table: str,
    names: tuple[str, ...],
    staged: int,
    *,
    unique: bool = False,
    primary_key: bool = False,
    keys_proven: bool = False,
) -> Iterator[bool]:
    """For a big load, drop the named indexes and the table's foreign keys (and, with `unique`, its
    unique constraints; with `primary_key`, its primary key) before the insert and recreate them (exact
    definitions) after: one index build and one set-based FK validation instead of millions of random
    index inserts and per-row FK checks. With `keys_proven` (the caller proves every reference in the
    same transaction) the foreign keys come back NOT VALID and are validated after commit, in the
    background. Yields whether the bulk path was taken."""
    cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
    row = cursor.fetchone()
    existing = max(row[0], 0) if row else 0
    if staged < BULK_MIN_ROWS or staged <= existing / 5:
        yield False
        return
    cursor.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = ANY(%s)", [table, list(names)]
    )
    definitions = [r[0] for r in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype = ANY(%s) ORDER BY contype, conname",
        [table, ["f"] + (["u"] if unique else []) + (["p"] if primary_key else [])],
    )
    constraints = cursor.fetchall()
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for name, _definition in constraints:
        cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    for name in names:
        cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
    yield True
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    with _step(f"rebuild indexes of {table}"):
        for definition in definitions:
            cursor.execute(definition)
    with _step(f"restore constraints of {table}"):
        for name, definition in constraints:
            proven = keys_proven and definition.startswith("FOREIGN KEY")
            cursor.execute(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
                + (" NOT VALID" if proven else "")
            )
            if proven:
                _validate_after_commit(table, name)
    log.info("bulk load of %s rows into %s: indexes and foreign keys rebuilt", staged, table)


def _validate_after_commit(table: str, name: str) -> None:
    from crm_tags import tasks

    transaction.on_commit(lambda: tasks.validate_constraint.delay(table, name))


def _insert_events(cursor: Any, staged: int) -> None:
    """Move the staged events into the table (a small load sorted, so the customer index fills in order)."""
    with _bulk_indexes(cursor, "crm_tags_event", EVENT_INDEXES, staged) as bulk:
        _pause_ranks(cursor, bulk)
        cursor.execute(
            "INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, amount, channel, properties) "  # noqa: S608
            "SELECT customer_id, event_type, occurred_at, amount, channel, properties FROM crm_stage_events_ids"
            + ("" if bulk else " ORDER BY customer_id, occurred_at")
        )
    if bulk:
        _resume_ranks(cursor)
        cursor.execute(
            "SELECT crm_tags_refresh_ranks(array_agg(customer_id), array_agg(event_type)) FROM ("
            "SELECT DISTINCT customer_id, event_type FROM crm_stage_events_ids s WHERE EXISTS ("
            "SELECT 1 FROM crm_tags_rankedcount p WHERE p.event_type = s.event_type)) t"
        )


def _pause_ranks(cursor: Any, bulk: bool) -> bool:
    """A bulk load switches the ranks' insert trigger off (it would look up every touched customer
    before the event indexes are back) and keeps the ranks itself once they are; returns whether the
    table held no events before (a first load, whose ranks come from the loaded events alone)."""
    if not bulk:
        return False
    cursor.execute("SELECT NOT EXISTS (SELECT 1 FROM crm_tags_event)")
    first_load = cursor.fetchone()[0]
    cursor.execute(f"ALTER TABLE crm_tags_event DISABLE TRIGGER {ranks.INSERT_TRIGGER}")
    return first_load


def _resume_ranks(cursor: Any) -> None:
    cursor.execute(f"ALTER TABLE crm_tags_event ENABLE TRIGGER {ranks.INSERT_TRIGGER}")


@transaction.atomic
def import_events(upload: IO[bytes] | IO[str]) -> ImportResult:
    """Load events for known customers and update their lifetime totals. Call inside a transaction.

    A plain file (no CSV quoting, common ISO 8601 forms) takes the fast path: Arrow checks and types
    it and COPY loads it (_fast_import_events). Any other file, or one the fast checks find a problem
    in, rolls that back and goes through the row-by-row validator, which names every bad row.
    """
    text = _text(upload)
    header, rows = read_rows(text, EVENT_COLUMNS)
    if FAST_EVENTS:
        if text is not upload and isinstance(text, io.TextIOWrapper):
            text.detach()  # keep the upload open for the byte stream
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                return _fast_import_events(cursor, upload, header)
        except (_NotFast, DataError, pg_errors.DataError) as exc:  # DataError: COPY or a cast refused a row
            log.info("events import takes the validating path: %s", str(exc)[:200])
        header, rows = read_rows(_rewound_text(upload), EVENT_COLUMNS)
    last = header[-1]
    checked = [c for c in EVENT_COLUMNS if c in LIMITS]
    extras = [h for h in header if h not in EVENT_COLUMNS]
    errors = ErrorCollector()
    count = 0
    buffer: list[str] = []
    tz = timezone.get_default_timezone()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE crm_stage_events (row_no int, customer_external_id text, event_type text, "
            "occurred_at timestamptz, amount numeric, channel text, properties jsonb) ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY crm_stage_events (row_no, customer_external_id, event_type, occurred_at, amount, channel, "
            "properties) FROM STDIN"
        ) as copy:
            for number, record in rows:
                count += 1
                if errors.full or not _check_shape(number, record, last, errors):
                    continue
                bad = _too_long(number, record, checked, errors)
                external_id = record["customer_external_id"].strip()
                if not external_id:
                    errors.add(number, "customer_external_id", _("Required."))
                    bad = True
                event_type = record["event_type"].strip()
                if not EVENT_TYPE.match(event_type):
                    errors.add(number, "event_type", _("Use letters, digits, _ . - (at most 64)."))
                    bad = True
                raw_at = record["occurred_at"].strip()
                occurred_at = None
                try:
                    if len(raw_at) == 10:
                        occurred_at = datetime.combine(date.fromisoformat(raw_at), time.min, tz)
                    else:
                        occurred_at = datetime.fromisoformat(raw_at)
                        if occurred_at.tzinfo is None:
                            occurred_at = occurred_at.replace(tzinfo=tz)
                except ValueError:
                    errors.add(number, "occurred_at", _("Not an ISO 8601 date or date-time."))
                    bad = True
                raw_amount = record["amount"].strip()
                amount = None
                if raw_amount:
                    try:
                        amount = Decimal(raw_amount)
                        if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
                            raise InvalidOperation
                        amount = amount.quantize(Decimal("0.01"))
                    except InvalidOperation:
                        errors.add(number, "amount", _("Not a number."))
                        bad = True
                if bad or errors.errors:
                    continue
                properties = (
                    json.dumps({k: record[k] for k in extras if record[k] != ""}, ensure_ascii=False)
                    if extras
                    else "{}"
                )
                # COPY text lines built here: several times faster than write_row for millions of rows
                buffer.append(
                    # in UTC: Python takes offsets up to 23:59 that Postgres refuses
                    f"{number}\t{_copy_text(external_id)}\t{event_type}\t"
                    f"{occurred_at.astimezone(UTC).isoformat()}\t"
                    f"{NULL if amount is None else amount}\t{_copy_text(record['channel'].strip())}\t"
                    f"{_copy_text(properties)}\n"
                )
                if len(buffer) >= 5000:
                    copy.write("".join(buffer))
                    buffer.clear()
            if buffer:
                copy.write("".join(buffer))
        if not errors.errors:
            # unknown customers, named by row, set-based
            cursor.execute(
                "SELECT s.row_no, s.customer_external_id FROM crm_stage_events s "
                "LEFT JOIN crm_tags_customer c ON c.external_id = s.customer_external_id "
                "WHERE c.id IS NULL ORDER BY s.row_no LIMIT %s",
                [MAX_ERRORS],
            )
            for row_no, external_id in cursor.fetchall():
                errors.add(
                    row_no, "customer_external_id", _("Unknown customer %(id)s.") % {"id": external_id}
                )
        errors.errors.sort(key=lambda e: e.row)
        errors.raise_if_any()
        cursor.execute(
            "CREATE TEMP TABLE crm_stage_events_ids ON COMMIT DROP AS "
            "SELECT c.id AS customer_id, s.event_type, s.occurred_at, s.amount, s.channel, s.properties "
            "FROM crm_stage_events s JOIN crm_tags_customer c ON c.external_id = s.customer_external_id"
        )
        staged = cursor.rowcount
        with _step("insert events"):
            _insert_events(cursor, staged)
        cursor.execute(
            "WITH up AS (INSERT INTO crm_tags_customereventtotal (customer_id, event_type, events, amount_count, amount_sum, "  # noqa: S608
            "amount_min, amount_max, first_at, last_at) "
            "SELECT customer_id, event_type, count(*), count(amount), sum(amount), min(amount), max(amount), "
            "min(occurred_at), max(occurred_at) FROM crm_stage_events_ids GROUP BY customer_id, event_type "
            "ON CONFLICT (event_type, customer_id) DO UPDATE SET "
            + TOTALS_MERGE
            + " RETURNING customer_id) SELECT count(DISTINCT customer_id) FROM up"
        )
        customers = cursor.fetchone()[0]
        cursor.execute("DROP TABLE crm_stage_events_ids, crm_stage_events")
    log.info("imported %s events for %s customers", count, customers)
    return ImportResult(rows=count, created=count, customers=customers)


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


def raise_rejected(errors: list[RowError]) -> None:
    from config.csv_import import ImportRejected

    raise ImportRejected(errors)


# --- fast path for events: Arrow parses and checks, COPY loads, Python's validator only for bad files ---

FAST_BLOCK = 32 << 20  # bytes of CSV handed to Arrow at a time
# A bulk load types this many blocks at once: each customer look-up (pc.index_in) hashes every
# known id again (0.23 s of its 0.46 s for a block, at 1 M customers)
BULK_BLOCKS = 4
FAST_EVENTS = True  # tests switch it off to compare both paths
# Every customer's id is read when the table has at most one customer per this many bytes of file;
# a bigger table has only the customers the file names looked up (one more pass over the file).
FILE_BYTES_PER_CUSTOMER = 32


class _NotFast(Exception):
    """The file needs the precise Python validator (it may be bad, or use a form the fast path skips)."""


def _kept_at_ends() -> str:
    """An RE2 class of every character str.strip() keeps at either end of a value: any non-space at
    or above "!" (ASCII controls are left to the validator)."""
    ranges: list[tuple[int, int]] = []
    for point in range(0x21, 0x3001):  # U+3000 is the last character str.isspace() knows
        if chr(point).isspace():
            continue
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1] = (ranges[-1][0], point)
        else:
            ranges.append((point, point))
    ranges += [(0x3001, 0xD7FF), (0xE000, 0x10FFFF)]  # no surrogates in UTF-8
    return "[" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges) + "]"


_KEPT = _kept_at_ends()
UNPADDED = f"(?s)^{_KEPT}(?:.*{_KEPT})?$"  # non-empty, nothing str.strip() would remove
# The occurred_at forms datetime.fromisoformat and Arrow read alike: a plain date, or date T|space
# HH:MM[:SS[.f{1,6}]] and an optional Z, ±HH, ±HHMM or ±HH:MM. Anything else takes the validating path.
_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = "[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\\.[0-9]{1,6})?)?"
NAIVE_AT = f"^{_DATE}(?:[T ]{_TIME})?$"
AWARE_AT = f"^{_DATE}[T ]{_TIME}(?:Z|[+-][0-9]{{2}}(?::?[0-9]{{2}})?)$"
# amounts Decimal reads as the same value Postgres does, at most two decimals (no rounding to do)
PLAIN_AMOUNT = "^[+-]?(?:[0-9]{1,12}(?:\\.[0-9]{0,2})?|\\.[0-9]{1,2})$"
CONTROL = "[\\x00-\\x1f]"


@lru_cache(maxsize=8)
def _steady_offset_range(tz_name: str, today: date) -> tuple[date, date]:
    """Local dates around today between which `tz_name` keeps one UTC offset (a day's margin each
    side): converting a naive local time there cannot meet a gap or an ambiguous hour, so Postgres's
    AT TIME ZONE gives what Python's replace(tzinfo=...) gives."""
    tz = zoneinfo.ZoneInfo(tz_name)
    noon = time(12)

    def offset(day: date) -> Any:
        return datetime.combine(day, noon, tz).utcoffset()

    reference = offset(today)
    low = high = today
    step = timedelta(days=1)
    for _day in range(36525):  # a century each way
        if offset(low - step) != reference:
            break
        low -= step
    for _day in range(36525):
        if high + step > date(9998, 12, 1) or offset(high + step) != reference:
            break
        high += step
    return low + step, high - step


def _blocks(upload: IO[bytes] | IO[str]) -> Iterator[bytes]:
    """The data lines of the upload (header dropped) as blocks of whole lines, UTF-8 bytes."""
    if isinstance(upload, io.TextIOBase):
        upload.seek(0)

        def read(size: int) -> bytes:
            return upload.read(size).encode("utf-8")  # type: ignore[union-attr]
    else:
        raw = getattr(upload, "file", upload)
        raw.seek(0)
        read = raw.read
    rest = b""
    header_done = False
    while chunk := read(FAST_BLOCK):
        rest += chunk
        if not header_done:
            end = rest.find(b"\n")
            if end < 0:
                continue
            if b"\r" in rest[:end].removesuffix(b"\r"):  # Python's csv module ends the header there
                raise _NotFast("bare CR in the header line")
            rest, header_done = rest[end + 1 :], True
        cut = rest.rfind(b"\n") + 1
        if cut:
            yield rest[:cut]
            rest = rest[cut:]
    if rest and header_done:
        yield rest + b"\n"


def _size(upload: IO[bytes] | IO[str]) -> int:
    """The upload's size in bytes (characters for a text stream)."""
    size = getattr(upload, "size", None)
    if isinstance(size, int):
        return size
    raw = getattr(upload, "file", upload)
    try:
        return os.fstat(raw.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        position = raw.tell()
        end = raw.seek(0, io.SEEK_END)
        raw.seek(position)
        return end


def _read_block(block: bytes, columns: list[str], include: list[str] | None = None) -> Any:
    """An Arrow table of the block's cells, all text (empty cells stay ""). A row with the wrong number
    of cells, a blank line or bytes that are not UTF-8 raise _NotFast."""
    try:
        return pa_csv.read_csv(
            pa.py_buffer(block),
            read_options=pa_csv.ReadOptions(column_names=columns, block_size=8 << 20),
            parse_options=pa_csv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=False,
                include_columns=include,
            ),
        )
    except pa.ArrowException as exc:
        raise _NotFast(f"arrow: {str(exc)[:100]}") from exc


def _scan_file(upload: IO[bytes] | IO[str], columns: list[str], ext: str) -> tuple[int, Any]:
    """First pass: the data rows and the distinct customer external ids. A file Arrow and Python's csv
    module might split differently (CSV quoting, bare CR line ends...) raises _NotFast."""
    rows = newlines = 0
    distinct = []
    for block in _blocks(upload):
        if b'"' in block:
            raise _NotFast("quoted CSV")
        newlines += block.count(b"\n")
        table = _read_block(block, columns, include=[ext])
        rows += table.num_rows
        distinct.append(pc.unique(table[ext]))
    if rows == 0 or rows != newlines:
        raise _NotFast("row count")
    return rows, pc.unique(pa.chunked_array(distinct, pa.string()))


def _customer_map(cursor: Any, external_ids: Any | None) -> tuple[Any, Any]:
    """(external ids, customer ids) of the known customers among `external_ids` (one COPY in, one
    out), or of every customer when `external_ids` is None (one COPY out)."""
    source = "crm_tags_customer c"
    if external_ids is not None:
        cursor.execute("CREATE TEMP TABLE crm_wanted_ids (external_id text) ON COMMIT DROP")
        with cursor.copy("COPY crm_wanted_ids FROM STDIN") as copy:
            copy.write(_copy_lines([_copy_escaped(external_ids)]))
        source = "crm_wanted_ids w JOIN crm_tags_customer c ON c.external_id = w.external_id"
    out = bytearray(b"external_id,id\n")
    query = f"COPY (SELECT c.external_id, c.id FROM {source}) TO STDOUT (FORMAT csv)"  # noqa: S608
    with cursor.copy(query) as copy:
        for data in copy:
            out += data
    if external_ids is not None:
        cursor.execute("DROP TABLE crm_wanted_ids")
    found = pa_csv.read_csv(
        pa.py_buffer(out),
        convert_options=pa_csv.ConvertOptions(
            column_types={"external_id": pa.string(), "id": pa.int64()}, strings_can_be_null=False
        ),
    )
    # only unpadded ids: an id found among them needs no check of its own (see _typed_block)
    found = found.filter(pc.match_substring_regex(found["external_id"], UNPADDED))
    return found["external_id"].combine_chunks(), found["id"].combine_chunks()


def _typed_block(
    table: Any,
    col: dict[str, str],
    extras: list[tuple[str, str]],
    known: tuple[Any, Any],
    zone: tuple,
    types: list[str],
    lock: threading.Lock,
) -> Any:
    """The block's events as one Arrow table, in file order: the typed columns (customer_id, code:
    the event type's index in `types`, at, amount) that the totals are added up from and binary COPY
    is written from, and the channel; with extra columns, also the text COPY writes (zoned time, amount
    text, properties). Raises _NotFast when any cell needs the validator's judgement. Blocks may be
    typed in parallel: `types` grows under `lock`, so a type keeps its first index."""

    def every(mask: Any) -> bool:
        return bool(pc.all(mask).as_py()) if len(mask) else True

    def fits(values: Any, limit: int) -> bool:
        return not len(values) or pc.max(pc.utf8_length(values)).as_py() <= limit

    ext, typ, at, amount, channel = (table[col[c]] for c in EVENT_COLUMNS)
    with lock:
        for value in pc.unique(typ).to_pylist():
            if not EVENT_TYPE.match(value) or value != value.strip():
                raise _NotFast("event_type")
            if value not in types:
                types.append(value)  # the file's event types, numbered in order of appearance
        type_names = pa.array(types, pa.string())
    channels = pc.unique(channel)  # checked once per distinct value
    if not (
        every(pc.or_(pc.equal(channels, ""), pc.match_substring_regex(channels, UNPADDED)))
        and fits(channels, LIMITS["channel"])
    ):
        raise _NotFast("channel")
    # times: zoned ones as written; naive ones (and dates) get the default zone's offset, only on the
    # dates around today where that offset is steady (so no gap or repeated hour to resolve)
    low, high, offset = zone
    aware = pc.match_substring_regex(at, AWARE_AT)
    if every(aware):
        zoned = at
    else:
        naive = pc.match_substring_regex(at, NAIVE_AT)
        if not every(pc.or_(naive, aware)):
            raise _NotFast("occurred_at shape")
        day = pc.utf8_slice_codeunits(at, 0, 10)
        if not every(pc.or_(pc.invert(naive), pc.and_(pc.greater_equal(day, low), pc.less_equal(day, high)))):
            raise _NotFast("naive occurred_at outside the steady offset range")
        is_date = pc.equal(pc.utf8_length(at), 10)
        zoned = pc.if_else(
            naive, pc.binary_join_element_wise(at, pc.if_else(is_date, "T00:00" + offset, offset), ""), at
        )
    if not every(pc.not_equal(pc.utf8_slice_codeunits(at, 0, 4), "0000")):
        raise _NotFast("year 0")
    has_amount = pc.not_equal(amount, "")
    if not every(pc.or_(pc.invert(has_amount), pc.match_substring_regex(amount, PLAIN_AMOUNT))):
        raise _NotFast("amount")
    try:  # Arrow parses what Python and Postgres read alike; this refuses Feb 30, hour 24...
        occurred_at = pc.cast(zoned, pa.timestamp("us", tz="UTC"))
        amounts = pc.cast(pc.if_else(has_amount, amount, pa.scalar(None, pa.string())), pa.decimal128(14, 2))
    except pa.ArrowException as exc:
        raise _NotFast(f"cast: {str(exc)[:100]}") from exc
    # the known ids are unpadded and within the length limit, so an id found among them passes the
    # checks the validator makes (a padded or too long one is unknown: the validator judges it)
    index = pc.index_in(ext, value_set=known[0])
    if index.null_count:
        raise _NotFast("unknown customer")
    columns = {
        "customer_id": pc.take(known[1], index),
        "code": pc.index_in(typ, value_set=type_names),  # group and sort by a number, not text
        "at": occurred_at,
        "amount": amounts,
        "channel": channel,
    }
    if extras:  # text COPY: Postgres reads these forms as Arrow did (explicit offsets, ISO 8601)
        columns |= {
            "zoned": zoned,
            "amount_text": pc.if_else(has_amount, amount, NULL),
            "properties": _copy_escaped(_properties(table, extras)),
        }
    return pa.table(columns)


def _copy_payload(rows: Any, types: list[str]) -> bytes | memoryview:
    """COPY data of the typed rows, in their order: binary rows, or text lines when the rows carry
    text for extra columns (properties)."""
    if "zoned" not in rows.column_names:
        return _binary_rows(rows, types)
    return _copy_lines(
        [
            pc.cast(rows["customer_id"], pa.string()),
            pc.take(pa.array(types, pa.string()), rows["code"]),
            rows["zoned"],
            rows["amount_text"],
            _copy_escaped(rows["channel"]),
            rows["properties"],
        ]
    )


# COPY's binary format: the file header (signature, flags, no extension) and the end marker
BINARY_HEADER = b"PGCOPY\n\xff\r\n\0" + bytes(8)
BINARY_TRAILER = b"\xff\xff"
POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds


def _whole(values: Any) -> Any:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _fixed(records: Any) -> Any:
    """Fixed-width numpy records as an Arrow binary array of their bytes, without a copy."""
    width, count = records.dtype.itemsize, len(records)
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(records)])


def _binary_rows(rows: Any, types: list[str]) -> memoryview:
    """The events as rows of COPY's binary format (customer_id, event_type, occurred_at, amount,
    channel), in order: every field is a length and its bytes in network order. The fixed-width runs
    are numpy records; Arrow joins them with the event type and channel bytes row by row."""
    count = rows.num_rows
    customer_id, code, occurred_at, amounts, channel = (
        _whole(rows[name]) for name in ("customer_id", "code", "at", "amount", "channel")
    )
    head = np.empty(count, dtype=[("fields", ">i2"), ("n1", ">i4"), ("customer", ">i8"), ("n2", ">i4")])
    head["fields"], head["n1"], head["customer"] = 5, 8, customer_id.to_numpy(zero_copy_only=False)
    names = [name.encode() for name in types]
    head["n2"] = np.array([len(name) for name in names], dtype=np.int32)[code.to_numpy(zero_copy_only=False)]
    event_type = pc.take(pa.array(names, pa.binary()), code)
    middle = np.empty(count, dtype=[("n3", ">i4"), ("at", ">i8"), ("n4", ">i4")])
    middle["n3"] = 8
    middle["at"] = occurred_at.cast(pa.int64()).to_numpy(zero_copy_only=False) - POSTGRES_EPOCH_US
    has_amount = pc.is_valid(amounts)
    middle["n4"] = np.where(has_amount.to_numpy(zero_copy_only=False), 16, -1)  # -1: NULL
    # numeric: 4 base-10000 digits, weight 2 (10^8, 10^4, 1, 10^-4), 2 decimals; the cents are the low
    # 64 bits of each 128-bit decimal (|amount| < 10^12)
    cents = np.frombuffer(amounts.buffers()[1], dtype="<i8")[2 * amounts.offset :][: 2 * count : 2]
    whole, fraction = np.divmod(np.abs(cents), 100)
    numeric = np.empty(count, dtype=[("head", ">i2", (4,)), ("digits", ">i2", (4,))])
    numeric["head"] = np.stack(
        [np.full(count, 4), np.full(count, 2), np.where(cents < 0, 0x4000, 0), np.full(count, 2)], axis=1
    )
    numeric["digits"] = np.stack(
        [whole // 10**8, whole // 10**4 % 10**4, whole % 10**4, fraction * 100], axis=1
    )
    channel_length = pc.binary_length(channel).to_numpy(zero_copy_only=False).astype(">i4")
    joined = pc.binary_join_element_wise(
        _fixed(head),
        event_type,
        _fixed(middle),
        pc.if_else(has_amount, _fixed(numeric), b""),
        _fixed(channel_length),
        pc.cast(channel, pa.binary()),
        b"",
    )
    return _joined_bytes(joined)


def _copy_escaped(values: Any) -> Any:
    """Text values escaped for COPY's text format (new lines cannot occur: they end CSV rows)."""
    if not pc.any(pc.match_substring_regex(values, "[\\\\\t\r]")).as_py():
        return values
    for plain, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\r", "\\r")):
        values = pc.replace_substring(values, plain, escaped)
    return values


def _copy_lines(columns: list[Any]) -> memoryview:
    """COPY text format lines of the columns (text, or a text scalar for every row), without a copy:
    the joined values' own buffer."""
    return _joined_bytes(pc.binary_join_element_wise(pc.binary_join_element_wise(*columns, "\t"), "\n", ""))


def _joined_bytes(values: Any) -> memoryview:
    """The bytes of a string or binary array's values, back to back: its data buffer, not a copy."""
    values = _whole(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)
    start, end = int(offsets[values.offset]), int(offsets[values.offset + len(values)])
    return memoryview(values.buffers()[2])[start:end]


def _properties(table: Any, extras: list[tuple[str, str]]) -> Any:
    """JSON objects of the non-empty extra cells of each row."""
    parts = []
    for name, column in extras:
        values = table[column]
        if pc.any(pc.match_substring_regex(values, CONTROL)).as_py():
            raise _NotFast("control character in a property")
        escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
        key = json.dumps(name, ensure_ascii=False)
        part = pc.binary_join_element_wise(f'{key}: "', escaped, '", ', "")
        parts.append(pc.if_else(pc.equal(values, ""), "", part))
    joined = pc.utf8_rtrim(pc.binary_join_element_wise(*parts, ""), characters=", ")
    return pc.binary_join_element_wise("{", joined, "}", "")


def _combined_totals(parts: list[Any], types: list[str], rank: Any) -> tuple[int, int, memoryview, Any]:
    """The events' totals per customer and type (one hash aggregation of every block's typed columns),
    in the order of the totals' key (customer, event type by `rank`): a first load builds the key's
    index over rows already in its order, and a rule's look-ups in customer order read the table's
    pages in order. (groups, customers, COPY text lines in TOTAL_COLUMNS order, the groups'
    customer_id and code)."""
    table = pa.concat_tables(parts).group_by(["customer_id", "code"])
    table = table.aggregate(
        [
            ("at", "count"),
            ("amount", "count"),
            ("amount", "sum"),
            ("amount", "min"),
            ("amount", "max"),
            ("at", "min"),
            ("at", "max"),
        ]
    )
    code = table["code"].to_numpy()
    table = table.take(np.lexsort((rank[code], table["customer_id"].to_numpy())))

    def text(name: str) -> Any:
        values = table[name]
        if pa.types.is_timestamp(values.type):
            values = _utc_text(values)
        return pc.fill_null(pc.cast(values, pa.string()), NULL)

    event_types = pc.take(pa.array(types, pa.string()), table["code"])
    columns = [text("customer_id"), event_types]
    columns += [text(name) for name in ("at_count", "amount_count", "amount_sum", "amount_min")]
    columns += [text(name) for name in ("amount_max", "at_min", "at_max")]
    customers = pc.count_distinct(table["customer_id"]).as_py()
    return table.num_rows, customers, _copy_lines(columns), table.select(["customer_id", "code"])


def _utc_text(values: Any) -> Any:
    """Timestamps as text Postgres reads, in UTC wall time (formatting in a zone is slow)."""
    return pc.binary_join_element_wise(pc.cast(values.cast(pa.timestamp("us")), pa.string()), "Z", "")


def _first_load_ranks(
    parts: list[Any], types: list[str], pairs: dict[str, list[int]]
) -> tuple[memoryview, int]:
    """The ranks of the registered pairs from the loaded events' typed columns alone (a first load):
    COPY text lines and their count. No database work, so it can run beside the index builds."""
    table = pa.concat_tables(parts)  # no copy: the parts' chunks
    code, customer_id, occurred_at = (table[name] for name in ("code", "customer_id", "at"))
    columns = []
    for event_type, ks in pairs.items():
        chosen = pc.equal(code, types.index(event_type))
        customers = pc.filter(customer_id, chosen).to_numpy()
        times = pc.filter(occurred_at, chosen).cast(pa.int64()).to_numpy()
        for k, customer_ids, at in ranks.kth_latest(customers, times, ks):
            columns.append(
                pa.table(
                    {
                        "event_type": pa.repeat(pa.scalar(event_type, pa.string()), len(customer_ids)),
                        "k": pa.array(np.full(len(customer_ids), k)),
                        "customer_id": pa.array(customer_ids),
                        "at": pa.array(at, pa.timestamp("us")),
                    }
                )
            )
    rows = pa.concat_tables(columns)
    lines = _copy_lines(
        [
            rows["event_type"],
            pc.cast(rows["k"], pa.string()),
            pc.cast(rows["customer_id"], pa.string()),
            _utc_text(rows["at"]),
        ]
    )
    return lines, rows.num_rows


def _keep_ranks(cursor: Any, pairs: dict[str, list[int]], types: list[str], keys: Any, computed: Any) -> None:
    """After a bulk load (indexes back): the ranks of the registered pairs, computed from the loaded
    events' typed columns on a first load (`computed`: a future of _first_load_ranks), else
    refreshed for the customers the load touched."""
    _resume_ranks(cursor)
    if not pairs:
        return
    if computed is None:
        touched = keys.filter(pc.is_in(keys["code"], pa.array([types.index(t) for t in pairs], pa.int32())))
        event_types = pc.take(pa.array(types, pa.string()), touched["code"])
        ranks.refresh(cursor, touched["customer_id"].to_pylist(), event_types.to_pylist())
        return
    lines, count = computed.result()
    # the ranks' customers are the events' customers: proven by the totals' key as for the events
    with _bulk_indexes(
        cursor,
        "crm_tags_eventrank",
        ("crm_rank_type_k_at",),
        count,
        primary_key=True,
        keys_proven=True,
    ):
        with cursor.copy(
            "COPY crm_tags_eventrank (event_type, k, customer_id, occurred_at) FROM STDIN"
        ) as copy:
            copy.write(lines)


def _rewound_text(upload: IO[bytes] | IO[str]) -> IO[str]:
    """A fresh text stream over the upload from its start (for the validating path after a fast try)."""
    if isinstance(upload, io.TextIOBase):
        upload.seek(0)
        return upload
    return _text(upload)


TOTAL_INDEXES = ("crm_total_type_last",)


TOTAL_COLUMNS = (
    "customer_id, event_type, events, amount_count, amount_sum, amount_min, amount_max, first_at, last_at"
)


def _merge_totals(cursor: Any, groups: int, lines: memoryview) -> None:
    """Add the new totals (COPY text lines in TOTAL_COLUMNS order) into the lifetime totals. A big
    merge drops the totals' indexes, unique constraint and foreign key and either copies straight into
    an empty table or merges with two hash joins (UPDATE … FROM, INSERT … NOT EXISTS) instead of a
    speculative insert per row; a small one is one INSERT … ON CONFLICT."""
    with _bulk_indexes(cursor, "crm_tags_customereventtotal", TOTAL_INDEXES, groups, unique=True) as bulk:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM crm_tags_customereventtotal)")
        if bulk and not cursor.fetchone()[0]:  # a first load: nothing to add to
            with cursor.copy(f"COPY crm_tags_customereventtotal ({TOTAL_COLUMNS}) FROM STDIN") as copy:
                copy.write(lines)
            return
        cursor.execute(
            "CREATE TEMP TABLE crm_new_totals (customer_id bigint, event_type text, n bigint, ac bigint, "
            "s numeric, mn numeric, mx numeric, first timestamptz, last timestamptz) ON COMMIT DROP"
        )
        with cursor.copy("COPY crm_new_totals FROM STDIN") as copy:
            copy.write(lines)
        cursor.execute("ANALYZE crm_new_totals")
        if not bulk:
            cursor.execute(
                f"INSERT INTO crm_tags_customereventtotal ({TOTAL_COLUMNS}) "  # noqa: S608
                "SELECT customer_id, event_type, n, ac, s, mn, mx, first, last FROM crm_new_totals "
                "ON CONFLICT (event_type, customer_id) DO UPDATE SET " + TOTALS_MERGE
            )
        else:  # hash joins: a nested loop would rescan the rows this very statement inserts
            with _local_settings(cursor, enable_nestloop="off", work_mem="256MB"):
                _merge_totals_by_hash_joins(cursor)
        cursor.execute("DROP TABLE crm_new_totals")


def _merge_totals_by_hash_joins(cursor: Any) -> None:
    cursor.execute(
        "UPDATE crm_tags_customereventtotal t SET events = t.events + n.n, "
        "amount_count = t.amount_count + n.ac, "
        "amount_sum = CASE WHEN t.amount_sum IS NULL THEN n.s WHEN n.s IS NULL THEN t.amount_sum "
        "ELSE t.amount_sum + n.s END, amount_min = LEAST(t.amount_min, n.mn), "
        "amount_max = GREATEST(t.amount_max, n.mx), first_at = LEAST(t.first_at, n.first), "
        "last_at = GREATEST(t.last_at, n.last) FROM crm_new_totals n "
        "WHERE t.customer_id = n.customer_id AND t.event_type = n.event_type"
    )
    cursor.execute(
        f"INSERT INTO crm_tags_customereventtotal ({TOTAL_COLUMNS}) "  # noqa: S608
        "SELECT customer_id, event_type, n, ac, s, mn, mx, first, last FROM crm_new_totals n "
        "WHERE NOT EXISTS (SELECT 1 FROM crm_tags_customereventtotal t "
        "WHERE t.customer_id = n.customer_id AND t.event_type = n.event_type)"
    )


def _fast_import_events(cursor: Any, upload: IO[bytes] | IO[str], header: list[str]) -> ImportResult:
    """Arrow (C++) checks every cell and types it, COPY loads the rows, and the totals are added up in
    Arrow and merged once. The customer ids come from one COPY of every customer, or, when the table is
    much bigger than the file, of the ones a first pass over the file names. A small load streams
    each block into COPY while Postgres stores the previous one. A bulk load (the events' indexes are
    dropped and rebuilt) types its blocks two at a time, then copies the rows in the order of the
    covering index (event type, time): building an index over rows already in its order is a fraction
    of the sort it otherwise is. Raises _NotFast (or a DataError) so the caller rolls back to its
    savepoint and validates row by row, when any cell fails a check or the file uses CSV quoting
    (Python's and Arrow's CSV readers differ on odd quoting)."""
    columns = [f"c{i}" for i in range(len(header))]
    col = {name: columns[header.index(name)] for name in EVENT_COLUMNS}
    extras = [(name, columns[i]) for i, name in enumerate(header) if name not in EVENT_COLUMNS]
    blocks = _blocks(upload)
    first = next(blocks, b"")
    if not first:
        raise _NotFast("no rows")
    size = _size(upload)
    estimate = int(size * first.count(b"\n") / len(first))
    cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'crm_tags_customer'")
    with _step("find customers"):
        if max(cursor.fetchone()[0], 1) <= size / FILE_BYTES_PER_CUSTOMER:
            known = _customer_map(cursor, None)
        else:  # a small file for a big table: look up only the customers it names
            estimate, external_ids = _scan_file(upload, columns, col["customer_external_id"])
            known = _customer_map(cursor, external_ids)
            blocks = _blocks(upload)
            first = next(blocks)
    tz_name = timezone.get_default_timezone_name()
    low, high = _steady_offset_range(tz_name, timezone.localdate())
    offset = datetime.combine(low, time(12), zoneinfo.ZoneInfo(tz_name)).strftime("%z")
    zone = (low.isoformat(), high.isoformat(), f"{offset[:3]}:{offset[3:]}")
    types: list[str] = []
    lock = threading.Lock()

    def typed(block: bytes) -> Any:
        if b'"' in block:
            raise _NotFast("quoted CSV")
        table = _read_block(block, columns)
        if table.num_rows != block.count(b"\n"):  # a bare CR, or a line Arrow read differently from csv
            raise _NotFast("row count")
        return _typed_block(table, col, extras, known, zone, types, lock)

    # Every event's customer gets a totals row, whose foreign key is checked in this transaction while
    # dropping the events' own key holds the customers table against deletes until commit: so the
    # events' key comes back unchecked (NOT VALID) and is validated in the background after commit.
    with ThreadPoolExecutor(max_workers=2) as pool:
        with _bulk_indexes(
            cursor, "crm_tags_event", EVENT_INDEXES, estimate, primary_key=True, keys_proven=True
        ) as bulk:
            first_load = _pause_ranks(cursor, bulk)
            if first_load:
                # emptied in this (sub)transaction, so COPY may write the rows frozen: no later pass sets
                # their hint bits (a rewrite of every page) or freezes them
                cursor.execute("TRUNCATE crm_tags_event")
            blocks = itertools.chain([first], blocks)
            if bulk:
                with _step("type events"):
                    rows = pa.concat_tables(_in_order(pool, typed, _joined(blocks, BULK_BLOCKS)))
                rank = _collation_ranks(cursor, types)
            parts: list[Any] = []
            # a queued writer sends from its own thread: Python prepares the next rows meanwhile
            # psycopg's own cursor: Django's debug wrapper (DEBUG=true) takes no writer
            raw_cursor = getattr(cursor, "cursor", cursor)
            writer = QueuedLibpqWriter(raw_cursor)
            with (
                _step("copy events"),
                raw_cursor.copy(
                    "COPY crm_tags_event (customer_id, event_type, occurred_at, amount, channel"
                    + (", properties) FROM STDIN (FORMAT text" if extras else ") FROM STDIN (FORMAT binary")
                    + (", FREEZE)" if first_load else ")"),
                    writer=writer,
                ) as copy,
            ):
                if not extras:
                    copy.write(BINARY_HEADER)
                if bulk:
                    parts.append(rows)
                    # The totals' aggregation and a first load's ranks need no database: the pool
                    # computes them while Postgres stores the rows and rebuilds the event indexes.
                    summed = pool.submit(_combined_totals, parts, types, rank)
                    for chunk in _index_ordered(rows, rank):
                        copy.write(_copy_payload(chunk, types))
                else:
                    for block in blocks:
                        block_rows = typed(block)
                        copy.write(_copy_payload(block_rows, types))
                        parts.append(block_rows)
                if not extras:
                    copy.write(BINARY_TRAILER)
            if not bulk:
                summed = pool.submit(_combined_totals, parts, types, _collation_ranks(cursor, types))
            pairs = {t: ks for t, ks in ranks.registered().items() if t in types} if bulk else {}
            computed = pool.submit(_first_load_ranks, parts, types, pairs) if first_load and pairs else None
            if not bulk:
                with _step("merge totals"):
                    groups, customers, lines, keys = summed.result()
                    _merge_totals(cursor, groups, lines)
        if bulk:
            with _step("merge totals"):
                groups, customers, lines, keys = summed.result()
                _merge_totals(cursor, groups, lines)
            with _step("keep ranks"):
                _keep_ranks(cursor, pairs, types, keys, computed)
    rows_loaded = sum(part.num_rows for part in parts)
    log.info("imported %s events for %s customers (fast path)", rows_loaded, customers)
    return ImportResult(rows=rows_loaded, created=rows_loaded, customers=customers)


def _joined(blocks: Iterator[bytes], count: int) -> Iterator[bytes]:
    """The blocks (of whole lines) joined `count` at a time."""
    while batch := list(itertools.islice(blocks, count)):
        yield b"".join(batch)


def _in_order(pool: ThreadPoolExecutor, work: Any, items: Iterator[Any], ahead: int = 2) -> Iterator[Any]:
    """work(item) for each item, computed by the pool and yielded in order; at most `ahead` items
    are submitted beyond the one being waited for (so only a few blocks are held at a time)."""
    pending: deque[Any] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


INDEX_ORDER_CHUNK = 1 << 20  # rows per COPY payload when copying in index order


def _collation_ranks(cursor: Any, types: list[str]) -> Any:
    """For each event type code, its place among the file's types as the database sorts them (the
    order of the indexes that lead with the event type)."""
    cursor.execute("SELECT array_agg(t ORDER BY t) FROM unnest(%s::varchar[]) t", [types])
    collated = cursor.fetchone()[0]
    return np.array([collated.index(name) for name in types], dtype=np.int64)


def _index_ordered(rows: Any, rank: Any) -> Iterator[Any]:
    """The rows in the covering index's order, (event_type, occurred_at), in chunks: the event types
    by `rank` (as the database sorts them), then time (ties in file order)."""
    rank = rank[rows["code"].to_numpy()]
    at = rows["at"].cast(pa.int64()).to_numpy()
    earliest = int(at.min())
    if int(rank.max()) < 1 << 11 and int(at.max()) - earliest < 1 << 52:  # one int64 key sorts faster
        order = np.argsort((rank << 52) | (at - earliest), kind="stable")
    else:
        order = np.lexsort((at, rank))
    del rank, at
    # text rows (properties) can be long: a chunk stays far below Arrow's 2 GB per string column
    step = max(1, min(INDEX_ORDER_CHUNK, (256 << 20) * rows.num_rows // max(rows.nbytes, 1)))
    for start in range(0, len(order), step):
        yield rows.take(order[start : start + step])
