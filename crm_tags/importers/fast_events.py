"""The events fast path: Arrow types the file, COPY loads it, the totals and ranks follow (see
_fast_import_events)."""

import itertools
import logging
import threading
import zoneinfo
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from crm_tags import partitions, ranks
from crm_tags.importers import month_loads
from crm_tags.importers.arrow_typing import (
    _blocks,
    _customer_map,
    _NotFast,
    _read_block,
    _scan_file,
    _size,
    _steady_offset_range,
    _typed_block,
)
from crm_tags.importers.bulk_indexes import EVENT_INDEXES, _bulk_indexes
from crm_tags.importers.copy_formats import BINARY_HEADER, BINARY_TRAILER, _copy_payload
from crm_tags.importers.rank_upkeep import _first_load_ranks, _keep_ranks, _pause_ranks
from crm_tags.importers.sql_session import _step
from crm_tags.importers.totals import _combined_totals, _merge_totals
from crm_tags.importers.validation import EVENT_COLUMNS, ImportResult, ProgressCallback

log = logging.getLogger(__name__)


# A bulk load types this many blocks at once: each customer look-up (pc.index_in) hashes every
# known id again (0.23 s of its 0.46 s for a block, at 1 M customers)
BULK_BLOCKS = 4
# Every customer's id is read when the table has at most one customer per this many bytes of file;
# a bigger table has only the customers the file names looked up (one more pass over the file).
FILE_BYTES_PER_CUSTOMER = 32


def _fast_import_events(
    cursor: Any, upload: IO[bytes] | IO[str], header: list[str], progress: ProgressCallback | None = None
) -> ImportResult:
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
    read = [0]  # rows typed so far, for `progress`

    def typed(block: bytes) -> Any:
        if b'"' in block:
            raise _NotFast("quoted CSV")
        table = _read_block(block, columns)
        if table.num_rows != block.count(b"\n"):  # a bare CR, or a line Arrow read differently from csv
            raise _NotFast("row count")
        typed_rows = _typed_block(table, col, extras, known, zone, types, lock)
        if progress is not None:
            with lock:
                read[0] += table.num_rows
                progress(read[0])
        return typed_rows

    # The partitioned table loads month by month (month_loads): only the months the load fills have
    # their indexes rebuilt and their customer key checked. Into the plain table, every event's customer
    # gets a totals row, whose foreign key is checked in this transaction while dropping the events' own
    # key holds the customers table against deletes until commit: so the events' key comes back
    # unchecked (NOT VALID) and is validated in the background after commit.
    partitioned = partitions.is_partitioned(cursor)
    bulk_load = (
        month_loads.by_month(cursor, estimate)
        if partitioned
        else _bulk_indexes(
            cursor, "crm_tags_event", EVENT_INDEXES, estimate, primary_key=True, keys_proven=True
        )
    )
    # psycopg's own cursor: Django's debug wrapper (DEBUG=true) takes no writer
    raw_cursor = getattr(cursor, "cursor", cursor)
    with ThreadPoolExecutor(max_workers=2) as pool:
        with bulk_load as bulk:
            # (COPY … FREEZE, which a first load used, is refused on the partitioned events table)
            first_load = _pause_ranks(cursor, bool(bulk))
            blocks = itertools.chain([first], blocks)
            parts: list[Any] = []
            if bulk:
                with _step("type events"):
                    rows = pa.concat_tables(_in_order(pool, typed, _joined(blocks, BULK_BLOCKS)))
                _month_partitions_for(cursor, rows)
                rank = _collation_ranks(cursor, types)
                parts.append(rows)
                # The totals' aggregation and a first load's ranks need no database: the pool
                # computes them while Postgres stores the rows and rebuilds the event indexes.
                summed = pool.submit(_combined_totals, parts, types, rank)
                with _step("copy events"):
                    if partitioned:
                        direct, through_parent = bulk.plan(rows["at"].cast(pa.int64()).to_numpy())
                        for month, positions in direct:
                            month_rows = rows.take(positions)
                            first_id = bulk.reserve_ids(month_rows.num_rows)
                            _copy_rows(
                                raw_cursor,
                                month.name,
                                extras,
                                types,
                                _index_ordered(month_rows, rank),
                                first_id,
                            )
                        rest = rows.take(through_parent) if len(through_parent) < rows.num_rows else rows
                    else:
                        rest = rows
                    if rest.num_rows:
                        _copy_rows(raw_cursor, "crm_tags_event", extras, types, _index_ordered(rest, rank))
            else:
                with _step("copy events"):
                    _copy_rows(raw_cursor, "crm_tags_event", extras, types, _typed_each(blocks, typed, parts))
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
                # the events' key was checked in this load (each month's at its attach, the rest row by
                # row): it proves the totals' customers, which are the events' own
                _merge_totals(cursor, groups, lines, keys_proven=partitioned)
            with _step("keep ranks"):
                _keep_ranks(cursor, pairs, types, keys, computed)
    rows_loaded = sum(part.num_rows for part in parts)
    log.info("imported %s events for %s customers (fast path)", rows_loaded, customers)
    return ImportResult(rows=rows_loaded, created=rows_loaded, customers=customers)


def _typed_each(blocks: Iterator[bytes], typed: Any, parts: list[Any]) -> Iterator[Any]:
    """Each block typed, in order, as COPY takes it (a small load streams), kept in `parts`."""
    for block in blocks:
        block_rows = typed(block)
        parts.append(block_rows)
        yield block_rows


def _copy_rows(
    raw_cursor: Any,
    table: str,
    extras: list,
    types: list[str],
    chunks: Iterator[Any],
    first_id: int | None = None,
) -> None:
    """COPY the typed rows of `chunks` into `table`: binary, or text when they carry properties; with
    `first_id`, numbered from it (a detached month has no id default)."""
    names = "customer_id, event_type, occurred_at, amount, channel" + (", properties" if extras else "")
    if first_id is not None:
        names = "id, " + names
    form = "text" if extras else "binary"
    # a queued writer sends from its own thread: Python prepares the next rows meanwhile
    writer = QueuedLibpqWriter(raw_cursor)
    with raw_cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT {form})", writer=writer) as copy:
        if not extras:
            copy.write(BINARY_HEADER)
        for chunk in chunks:
            copy.write(_copy_payload(chunk, types, first_id))
            if first_id is not None:
                first_id += chunk.num_rows
        if not extras:
            copy.write(BINARY_TRAILER)


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


def _month_partitions_for(cursor: Any, rows: Any) -> None:
    """A bulk load holds the events table exclusively already: the months of its rows are made first,
    so each row goes straight into its own month's partition."""
    if rows.num_rows:
        low, high = (int(x) for x in pc.min_max(rows["at"].cast(pa.int64())).values())
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        partitions.ensure_range(
            cursor, epoch + timedelta(microseconds=low), epoch + timedelta(microseconds=high)
        )


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
