"""Bulk loading of customers and events: validate every row, COPY into a staging table, then merge
set-based (INSERT ... ON CONFLICT) and bring the per-customer totals up to date — all in the caller's
transaction, so a file with any bad row writes nothing and the totals never drift.
"""

import io
import json
import logging
import re
import time as time_module
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import IO, Any

from django.db import DataError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg import errors as pg_errors

from config.csv_import import MAX_ERRORS, ErrorCollector, RowError, read_rows

log = logging.getLogger(__name__)

CUSTOMER_COLUMNS = [
    "external_id",
    "name",
    "email",
    "phone",
    "city",
    "gender",
    "birth_date",
    "signup_at",
    "source_channel",
]
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


@transaction.atomic
def import_customers(upload: IO[bytes] | IO[str]) -> ImportResult:
    """Load customers (new external ids are created, known ones updated). Call inside a transaction."""
    header, rows = read_rows(_text(upload), CUSTOMER_COLUMNS)
    last = header[-1]
    checked = [c for c in CUSTOMER_COLUMNS if c in LIMITS]
    extras = [h for h in header if h not in CUSTOMER_COLUMNS]
    errors = ErrorCollector()
    seen: dict[str, int] = {}
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE crm_stage_customers (row_no int, external_id text, name text, email text, "
            "phone text, city text, gender text, birth_date date, signup_at timestamptz, "
            "source_channel text, attributes jsonb) ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY crm_stage_customers (row_no, external_id, name, email, phone, city, gender, birth_date, "
            "signup_at, source_channel, attributes) FROM STDIN"
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
                if bad or errors.errors:
                    continue
                attributes = {k: record[k] for k in extras if record[k] != ""}
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
                    )
                )
        errors.raise_if_any()
        with _bulk_indexes(cursor, "crm_tags_customer", CUSTOMER_INDEXES, count):
            cursor.execute(
                "WITH merged AS (INSERT INTO crm_tags_customer (external_id, name, email, phone, city, gender, birth_date, "
                "signup_at, source_channel, attributes, created_at, updated_at) "
                "SELECT external_id, name, email, phone, city, gender, birth_date, signup_at, source_channel, "
                "attributes, now(), now() FROM crm_stage_customers "
                "ON CONFLICT (external_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, "
                "phone = EXCLUDED.phone, city = EXCLUDED.city, gender = EXCLUDED.gender, "
                "birth_date = EXCLUDED.birth_date, signup_at = EXCLUDED.signup_at, "
                "source_channel = EXCLUDED.source_channel, "
                "attributes = crm_tags_customer.attributes || EXCLUDED.attributes, updated_at = now() "
                "RETURNING (xmax = 0) AS inserted) SELECT count(*) FILTER (WHERE inserted) FROM merged"
            )
            created = cursor.fetchone()[0]
        cursor.execute("DROP TABLE crm_stage_customers")
    log.info("imported %s customers (%s new)", count, created)
    return ImportResult(rows=count, created=created, updated=count - created)


# A load at least this big, and bigger than a fifth of the table, rebuilds the secondary indexes
# instead of inserting into them row by row (random index inserts dominate big loads).
BULK_MIN_ROWS = 200_000
EVENT_INDEXES = ("crm_event_cust_type_at", "crm_event_type_at_cover")
CUSTOMER_INDEXES = (
    "crm_customer_city",
    "crm_customer_signup",
    "crm_customer_name_trgm",
    "crm_customer_email_trgm",
)


@contextmanager
def _bulk_indexes(
    cursor: Any, table: str, names: tuple[str, ...], staged: int, *, unique: bool = False
) -> Iterator[bool]:
    """For a big load, drop the named indexes and the table's foreign keys (and, with `unique`, its
    unique constraints) before the insert and recreate them (exact definitions) after: one index build
    and one set-based FK validation instead of millions of random index inserts and per-row FK checks.
    Yields whether the bulk path was taken."""
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
        [table, ["f", "u"] if unique else ["f"]],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for name, _definition in foreign_keys:
        cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    for name in names:
        cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
    yield True
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for definition in definitions:
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    log.info("bulk load of %s rows into %s: indexes and foreign keys rebuilt", staged, table)


def _insert_events(cursor: Any, staged: int) -> None:
    """Move the staged events into the table (a small load sorted, so the customer index fills in order)."""
    with _bulk_indexes(cursor, "crm_tags_event", EVENT_INDEXES, staged) as bulk:
        cursor.execute(
            "INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, amount, channel, properties) "  # noqa: S608
            "SELECT customer_id, event_type, occurred_at, amount, channel, properties FROM crm_stage_events_ids"
            + ("" if bulk else " ORDER BY customer_id, event_type, occurred_at")
        )


@transaction.atomic
def import_events(upload: IO[bytes] | IO[str]) -> ImportResult:
    """Load events for known customers and update their lifetime totals. Call inside a transaction.

    A plain file (no CSV quoting, common ISO 8601 forms) takes the fast path: Postgres parses it, and
    set-based statements check, convert and insert it. Any other file, or one the SQL checks find a
    problem in, rolls that back and goes through the row-by-row validator, which names every bad row.
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
                    f"{number}\t{_copy_text(external_id)}\t{event_type}\t{occurred_at.isoformat()}\t"
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


# --- fast path for events: Postgres parses, SQL validates, Python only for bad files ---------------

FAST_CHUNK = 1 << 20
FAST_EVENTS = True  # tests switch it off to compare both paths
# Every character str.strip() removes that is not ASCII (ASCII ones are all below 33)
NON_ASCII_SPACES = [i for i in range(128, 0x3001) if chr(i).isspace()]
# The occurred_at forms datetime.fromisoformat and Postgres read alike, as shapes (each digit a 9): a
# plain date, or date T|space HH:MM[:SS[.f{1,6}]] and an optional Z, ±HH, ±HHMM or ±HH:MM. Anything
# else takes the validating path.
_TIMES = ["99:99", "99:99:99", *(f"99:99:99.{'9' * n}" for n in range(1, 7))]
_ZONES = ["Z", *(f"{sign}{z}" for sign in "+-" for z in ("99", "9999", "99:99"))]
NAIVE_SHAPES = ["9999-99-99", *(f"9999-99-99{sep}{t}" for sep in "T " for t in _TIMES)]
AWARE_SHAPES = [f"9999-99-99{sep}{t}{z}" for sep in "T " for t in _TIMES for z in _ZONES]


class _NotFast(Exception):
    """The file needs the precise Python validator (it may be bad, or use a form the SQL path skips)."""


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


def _byte_chunks(upload: IO[bytes] | IO[str]) -> Iterator[bytes]:
    """The upload's content from its first byte, as UTF-8 byte chunks."""
    if isinstance(upload, io.TextIOBase):
        upload.seek(0)
        while chunk := upload.read(FAST_CHUNK):
            yield chunk.encode("utf-8")
        return
    raw = getattr(upload, "file", upload)
    raw.seek(0)
    while chunk := raw.read(FAST_CHUNK):
        yield chunk


def _rewound_text(upload: IO[bytes] | IO[str]) -> IO[str]:
    """A fresh text stream over the upload from its start (for the validating path after a fast try)."""
    if isinstance(upload, io.TextIOBase):
        upload.seek(0)
        return upload
    return _text(upload)


def _unpadded(column: str) -> str:
    """SQL: the (non-empty) text has no character at either end that str.strip() would remove."""
    ends = []
    for end in (f"ascii({column})", f"ascii(right({column}, 1))"):
        ends.append(f"({end} BETWEEN 33 AND 127 OR ({end} > 127 AND {end} <> ALL(%s::int[])))")
    return "(" + " AND ".join(ends) + ")"


TOTAL_INDEXES = ("crm_total_type_last", "crm_tags_customereventtotal_customer_id_5c2661db")


def _merge_totals(cursor: Any, groups: int) -> None:
    """Add crm_new_totals into the lifetime totals. A big merge drops the totals' indexes, unique
    constraint and foreign key and merges with two hash joins (UPDATE … FROM, INSERT … NOT EXISTS)
    instead of a speculative insert per row; a small one is one INSERT … ON CONFLICT."""
    with _bulk_indexes(cursor, "crm_tags_customereventtotal", TOTAL_INDEXES, groups, unique=True) as bulk:
        if not bulk:
            cursor.execute(
                "INSERT INTO crm_tags_customereventtotal (customer_id, event_type, events, amount_count, "  # noqa: S608
                "amount_sum, amount_min, amount_max, first_at, last_at) "
                "SELECT customer_id, event_type, n, ac, s, mn, mx, first, last FROM crm_new_totals "
                "ON CONFLICT (event_type, customer_id) DO UPDATE SET " + TOTALS_MERGE
            )
            return
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
            "INSERT INTO crm_tags_customereventtotal (customer_id, event_type, events, amount_count, "
            "amount_sum, amount_min, amount_max, first_at, last_at) "
            "SELECT customer_id, event_type, n, ac, s, mn, mx, first, last FROM crm_new_totals n "
            "WHERE NOT EXISTS (SELECT 1 FROM crm_tags_customereventtotal t "
            "WHERE t.customer_id = n.customer_id AND t.event_type = n.event_type)"
        )


def _fast_import_events(cursor: Any, upload: IO[bytes] | IO[str], header: list[str]) -> ImportResult:
    """COPY the file's bytes into text columns, then ONE statement checks, converts and inserts the
    events and brings the totals up to date. Raises _NotFast (or a DataError: a cast or COPY refused a
    value) so the caller rolls back to its savepoint and validates row by row, when any row fails a
    check, or the file uses CSV quoting (Python's and Postgres's CSV readers differ on odd quoting).
    Checks are kept cheap (no per-row regular expressions: Postgres runs them at ~10 µs a row): digit
    shapes, the casts themselves, and event types checked once per distinct value in Python."""
    columns = [f"c{i}" for i in range(len(header))]
    cursor.execute(
        "CREATE TEMP TABLE crm_raw_events ("  # noqa: S608
        + ", ".join(f"{c} text" for c in columns)
        + ") ON COMMIT DROP"
    )
    newlines = 0
    last_byte = b"\n"
    with cursor.copy("COPY crm_raw_events FROM STDIN (FORMAT csv, HEADER true)") as copy:
        for chunk in _byte_chunks(upload):
            if b'"' in chunk:
                raise _NotFast("quoted CSV")
            newlines += chunk.count(b"\n")
            last_byte = chunk[-1:]
            copy.write(chunk)
    rows = cursor.rowcount
    # a row count other than the line count: blank lines, a "\." line, bare CR line ends...
    if rows <= 0 or rows != newlines + (last_byte != b"\n") - 1:
        raise _NotFast("row count")
    cursor.execute("ANALYZE crm_raw_events")
    cursor.execute(
        "SELECT current_setting('enable_nestloop'), current_setting('work_mem'), current_setting('jit')"
    )
    previous = cursor.fetchone()
    col = {name: columns[header.index(name)] for name in EVENT_COLUMNS}
    extras = [(name, columns[i]) for i, name in enumerate(header) if name not in EVENT_COLUMNS]
    tz_name = timezone.get_default_timezone_name()
    low, high = _steady_offset_range(tz_name, timezone.localdate())
    if extras:
        props = (
            "jsonb_strip_nulls(jsonb_build_object("
            + ", ".join(f"%s::text, NULLIF({c}, '')" for _name, c in extras)
            + "))"
        )
        props_params: list[Any] = [name for name, _c in extras]
    else:
        props, props_params = "'{}'::jsonb", []
    stage = (
        f"SELECT {col['customer_external_id']} AS ext, coalesce({col['event_type']}, '') AS typ, "  # noqa: S608
        f"{col['occurred_at']} AS at, translate({col['occurred_at']}, '0123456789', '9999999999') AS shape, "
        f"NULLIF({col['amount']}, '')::numeric AS amt, coalesce({col['channel']}, '') AS ch, "
        f"{props} AS props FROM crm_raw_events OFFSET 0"
    )
    spaces = NON_ASCII_SPACES
    cursor.execute(
        "CREATE TEMP TABLE crm_new_totals (customer_id bigint, event_type text, n bigint, ac bigint, "
        "s numeric, mn numeric, mx numeric, first timestamptz, last timestamptz) ON COMMIT DROP"
    )
    # every check folded into one boolean column of a subquery the planner cannot flatten: it then
    # estimates the rows that pass sensibly and hashes the customers, not the staged rows
    checked = (
        f"SELECT s.*, ({_unpadded('s.ext')} "  # noqa: S608
        f"AND (s.ch = '' OR (char_length(s.ch) <= 64 AND {_unpadded('s.ch')})) "
        "AND (s.shape = ANY(%s) OR (s.shape = ANY(%s) AND left(s.at, 10) BETWEEN %s AND %s)) "
        "AND left(s.at, 4) <> '0000' AND (char_length(s.at) = 10 OR substr(s.at, 12, 2) < '24') "
        "AND (substr(s.at, 17, 1) <> ':' OR substr(s.at, 18, 2) < '60') "
        "AND (s.amt IS NULL OR (s.amt = round(s.amt, 2) AND s.amt <> 'NaN'))) IS TRUE AS ok "
        f"FROM ({stage}) s OFFSET 0"
    )
    typed = (
        "CREATE TEMP TABLE crm_typed_events ON COMMIT DROP AS "  # noqa: S608
        "SELECT c.id AS customer_id, s.typ AS event_type, CASE WHEN char_length(s.at) = 10 "
        "THEN s.at::date::timestamp AT TIME ZONE %s WHEN s.shape = ANY(%s) THEN s.at::timestamptz "
        "ELSE s.at::timestamp AT TIME ZONE %s END AS occurred_at, s.amt::numeric(14, 2) AS amount, "
        "s.ch AS channel, s.props AS properties "
        f"FROM ({checked}) s JOIN crm_tags_customer c ON c.external_id = s.ext WHERE s.ok"
    )
    params = [
        tz_name,
        AWARE_SHAPES,
        tz_name,
        spaces,
        spaces,
        spaces,
        spaces,
        AWARE_SHAPES,
        NAIVE_SHAPES,
        low.isoformat(),
        high.isoformat(),
        *props_params,
    ]
    # the checks make the planner expect a handful of rows: tell it to hash, with room, and not to JIT
    cursor.execute(
        "SELECT set_config('enable_nestloop', 'off', true), set_config('work_mem', '256MB', true), "
        "set_config('jit', 'off', true)"
    )
    cursor.execute(typed, params)
    inserted = cursor.rowcount
    if inserted != rows:  # some row failed a check (or names no customer): the validating path names it
        raise _NotFast(f"{rows - inserted} rows need the precise validator")
    cursor.execute(
        "INSERT INTO crm_new_totals SELECT customer_id, event_type, count(*), count(amount), sum(amount), "
        "min(amount), max(amount), min(occurred_at), max(occurred_at) FROM crm_typed_events "
        "GROUP BY customer_id, event_type"
    )
    cursor.execute(
        "SELECT (SELECT count(*) FROM (SELECT customer_id FROM crm_new_totals GROUP BY customer_id) x), "
        "(SELECT array_agg(event_type) FROM (SELECT event_type FROM crm_new_totals GROUP BY event_type) y)"
    )
    customers, event_types = cursor.fetchone()
    if any(not EVENT_TYPE.match(t) or t != t.strip() for t in event_types or []):
        raise _NotFast("event types")
    with _bulk_indexes(cursor, "crm_tags_event", EVENT_INDEXES, rows) as bulk:
        cursor.execute(
            "INSERT INTO crm_tags_event (customer_id, event_type, occurred_at, amount, channel, properties) "  # noqa: S608
            "SELECT customer_id, event_type, occurred_at, amount, channel, properties FROM crm_typed_events"
            + ("" if bulk else " ORDER BY customer_id, event_type, occurred_at")
        )
        cursor.execute("ANALYZE crm_new_totals")
        _merge_totals(cursor, inserted)
    cursor.execute(
        "SELECT set_config('enable_nestloop', %s, true), set_config('work_mem', %s, true), "
        "set_config('jit', %s, true)",
        list(previous),
    )
    cursor.execute("DROP TABLE crm_raw_events, crm_typed_events, crm_new_totals")
    log.info("imported %s events for %s customers (fast path)", rows, customers)
    return ImportResult(rows=rows, created=rows, customers=customers)
