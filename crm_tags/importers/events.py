"""Loading events: the fast path first, the row-by-row validator (which names every bad row) when the
fast path cannot vouch for the file."""

import io
import json
import logging
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.db import DataError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg import errors as pg_errors

from config.csv_import import MAX_ERRORS, ErrorCollector, ImportRejected, RowError, read_rows
from crm_tags import partitions
from crm_tags.identity.imports import (
    APP_ID_COLUMN,
    IDENTIFIER_COLUMNS,
    event_row_identifier,
    identifier_columns,
)
from crm_tags.identity.normalise import IdentifierInvalid
from crm_tags.identity.rules import identity_rules
from crm_tags.importers import month_loads
from crm_tags.importers.arrow_typing import _NotFast
from crm_tags.importers.bulk_indexes import EVENT_INDEXES, _bulk_indexes
from crm_tags.importers.copy_formats import NULL, _copy_text
from crm_tags.importers.fast_events import _fast_import_events
from crm_tags.importers.rank_upkeep import _pause_ranks, _resume_ranks
from crm_tags.importers.sql_session import _step
from crm_tags.importers.totals import TOTALS_MERGE
from crm_tags.importers.validation import (
    EVENT_COLUMNS,
    EVENT_TYPE,
    LIMITS,
    MAX_AMOUNT,
    ImportResult,
    ProgressCallback,
    _check_shape,
    _rewound_text,
    _text,
    _too_long,
    report_progress,
)

log = logging.getLogger(__name__)


FAST_EVENTS = True  # tests switch it off to compare both paths


EVENT_FIELDS = "customer_id, event_type, occurred_at, amount, channel, properties"


def _insert_by_month(cursor: Any, staged: int) -> bool:
    """Move the staged events into the partitioned table; a big load fills the months it brings most
    of the rows of directly (month_loads). Returns whether it took the bulk path."""
    with month_loads.by_month(cursor, staged) as bulk:
        _pause_ranks(cursor, bool(bulk))
        if not bulk:
            cursor.execute(
                f"INSERT INTO crm_tags_event ({EVENT_FIELDS}) SELECT {EVENT_FIELDS} FROM crm_stage_events_ids "  # noqa: S608
                "ORDER BY customer_id, occurred_at"
            )
            return False
        # the rows counted by their UTC month: the months to make first, and the ones worth detaching
        cursor.execute(
            "SELECT date_trunc('month', occurred_at, 'UTC'), count(*) FROM crm_stage_events_ids GROUP BY 1"
        )
        counts = dict(cursor.fetchall())
        if counts:
            partitions.ensure_range(cursor, min(counts), max(counts))
        direct = bulk.plan_counts(counts)
        for month in direct:
            first_id = bulk.reserve_ids(counts[month.low])
            cursor.execute(
                f"INSERT INTO {month.name} (id, {EVENT_FIELDS}) SELECT %s + row_number() OVER () - 1, "  # noqa: S608
                f"{EVENT_FIELDS} FROM crm_stage_events_ids WHERE occurred_at >= %s AND occurred_at < %s",
                [first_id, month.low, month.high],
            )
        outside = " AND ".join(["NOT (occurred_at >= %s AND occurred_at < %s)"] * len(direct)) or "true"
        cursor.execute(
            f"INSERT INTO crm_tags_event ({EVENT_FIELDS}) SELECT {EVENT_FIELDS} FROM crm_stage_events_ids "  # noqa: S608
            f"WHERE {outside}",
            [moment for month in direct for moment in (month.low, month.high)],
        )
    return True


def _insert_events(cursor: Any, staged: int) -> None:
    """Move the staged events into the table (a small load sorted, so the customer index fills in order)."""
    if partitions.is_partitioned(cursor):
        bulk = _insert_by_month(cursor, staged)
    else:
        bulk = _insert_plain(cursor, staged)
    if bulk:
        _resume_ranks(cursor)
        cursor.execute(
            "SELECT crm_tags_refresh_ranks(array_agg(customer_id), array_agg(event_type)) FROM ("
            "SELECT DISTINCT customer_id, event_type FROM crm_stage_events_ids s WHERE EXISTS ("
            "SELECT 1 FROM crm_tags_rankedcount p WHERE p.event_type = s.event_type)) t"
        )


def _insert_plain(cursor: Any, staged: int) -> bool:
    """Move the staged events into the plain table. Returns whether it took the bulk path."""
    with _bulk_indexes(cursor, "crm_tags_event", EVENT_INDEXES, staged) as bulk:
        _pause_ranks(cursor, bulk)
        cursor.execute(
            f"INSERT INTO crm_tags_event ({EVENT_FIELDS}) SELECT {EVENT_FIELDS} FROM crm_stage_events_ids"  # noqa: S608
            + ("" if bulk else " ORDER BY customer_id, occurred_at")
        )
    return bulk


@transaction.atomic
def import_events(upload: IO[bytes] | IO[str], *, progress: ProgressCallback | None = None) -> ImportResult:
    """Load events for known customers and update their lifetime totals. Call inside a transaction.

    A plain file (no CSV quoting, common ISO 8601 forms) takes the fast path: Arrow checks and types
    it and COPY loads it (_fast_import_events). Any other file, or one the fast checks find a problem
    in, rolls that back and goes through the row-by-row validator, which names every bad row.
    """
    text = _text(upload)
    header, rows = read_rows(text, EVENT_COLUMNS[1:])
    # a file may name each row's customer by an identifier column (email, phone...) instead
    by_identifier = "customer_external_id" not in header
    id_columns = identifier_columns(header) if by_identifier else []
    if by_identifier and not id_columns:
        raise ImportRejected(
            [
                RowError(
                    row=1,
                    column="customer_external_id",
                    message=_(
                        "Required column is missing from the header (or name customers by one of: %(columns)s)."
                    )
                    % {"columns": ", ".join(IDENTIFIER_COLUMNS)},
                )
            ]
        )
    if FAST_EVENTS and not by_identifier:
        if text is not upload and isinstance(text, io.TextIOWrapper):
            text.detach()  # keep the upload open for the byte stream
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                return _fast_import_events(cursor, upload, header, progress)
        except (_NotFast, DataError, pg_errors.DataError) as exc:  # DataError: COPY or a cast refused a row
            log.info("events import takes the validating path: %s", str(exc)[:200])
        header, rows = read_rows(_rewound_text(upload), EVENT_COLUMNS)
    last = header[-1]
    checked = [c for c in EVENT_COLUMNS if c in LIMITS and c in header]
    # identifiers are personal values: they name the customer and are not kept as event properties
    hidden = {*id_columns, APP_ID_COLUMN} if by_identifier else set()
    extras = [h for h in header if h not in EVENT_COLUMNS and h not in hidden]
    rules = identity_rules() if by_identifier else None
    errors = ErrorCollector()
    count = 0
    buffer: list[str] = []
    tz = timezone.get_default_timezone()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE crm_stage_events (row_no int, customer_external_id text, event_type text, "
            "occurred_at timestamptz, amount numeric, channel text, properties jsonb, id_kind text, "
            "id_column text) ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY crm_stage_events (row_no, customer_external_id, event_type, occurred_at, amount, channel, "
            "properties, id_kind, id_column) FROM STDIN"
        ) as copy:
            for number, record in rows:
                count += 1
                report_progress(progress, count)
                if errors.full or not _check_shape(number, record, last, errors):
                    continue
                bad = _too_long(number, record, checked, errors)
                id_kind = id_column = NULL
                if by_identifier:
                    try:
                        found = event_row_identifier(record, id_columns, rules)
                    except IdentifierInvalid as exc:
                        errors.add(number, exc.kind, exc.message)
                        bad, found = True, None
                    else:
                        if found is None:
                            errors.add(
                                number,
                                id_columns[0],
                                _("Name the customer in one of: %(columns)s.")
                                % {"columns": ", ".join(id_columns)},
                            )
                            bad = True
                    external_id = found[2] if found else ""
                    if found:
                        id_column, id_kind = found[0], found[1]
                else:
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
                    f"{_copy_text(properties)}\t{id_kind}\t{id_column}\n"
                )
                if len(buffer) >= 5000:
                    copy.write("".join(buffer))
                    buffer.clear()
            if buffer:
                copy.write("".join(buffer))
        report_progress(progress, count, done=True)
        # each row's customer: by external id, or by the identifier a profile holds
        customer_of = (
            "JOIN crm_tags_customeridentifier c ON c.kind = s.id_kind AND c.value = s.customer_external_id"
            if by_identifier
            else "JOIN crm_tags_customer c ON c.external_id = s.customer_external_id"
        )
        customer_id = "c.customer_id" if by_identifier else "c.id"
        if not errors.errors:
            # unknown customers, named by row, set-based
            cursor.execute(
                "SELECT s.row_no, s.customer_external_id, s.id_column FROM crm_stage_events s "  # noqa: S608
                f"LEFT {customer_of} WHERE {customer_id} IS NULL ORDER BY s.row_no LIMIT %s",
                [MAX_ERRORS],
            )
            for row_no, external_id, id_column in cursor.fetchall():
                if by_identifier:  # the value is personal: the message names the row and column only
                    errors.add(row_no, id_column, _("No customer has this identifier."))
                else:
                    errors.add(
                        row_no, "customer_external_id", _("Unknown customer %(id)s.") % {"id": external_id}
                    )
        errors.errors.sort(key=lambda e: e.row)
        errors.raise_if_any()
        cursor.execute(
            "CREATE TEMP TABLE crm_stage_events_ids ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {customer_id} AS customer_id, s.event_type, s.occurred_at, s.amount, s.channel, s.properties "
            f"FROM crm_stage_events s {customer_of}"
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
