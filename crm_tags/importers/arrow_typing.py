"""The events fast path's reading and typing: Arrow splits the file in blocks, checks every cell the
way the validator would and types it; anything it cannot vouch for raises _NotFast."""

import io
import json
import os
import threading
import zoneinfo
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from crm_tags.importers.copy_formats import NULL, _copy_escaped, _copy_lines
from crm_tags.importers.validation import EVENT_COLUMNS, EVENT_TYPE, LIMITS

FAST_BLOCK = 32 << 20  # bytes of CSV handed to Arrow at a time


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
