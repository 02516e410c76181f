"""Postgres COPY encodings: text lines escaped, binary rows built from Arrow columns without copies."""

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL = "\\N"


def _copy_text(value: str) -> str:
    """A value escaped for COPY's text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _copy_payload(rows: Any, types: list[str], first_id: int | None = None) -> bytes | memoryview:
    """COPY data of the typed rows, in their order: binary rows, or text lines when the rows carry
    text for extra columns (properties). With `first_id`, each row leads with its id (first_id, then
    the next numbers in order)."""
    if "zoned" not in rows.column_names:
        return _binary_rows(rows, types, first_id)
    ids = [] if first_id is None else [pc.cast(pa.array(_ids(first_id, rows.num_rows)), pa.string())]
    return _copy_lines(
        [
            *ids,
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


def _ids(first_id: int, count: int) -> Any:
    return np.arange(first_id, first_id + count, dtype=np.int64)


def _binary_rows(rows: Any, types: list[str], first_id: int | None = None) -> memoryview:
    """The events as rows of COPY's binary format ([id,] customer_id, event_type, occurred_at, amount,
    channel), in order: every field is a length and its bytes in network order. The fixed-width runs
    are numpy records; Arrow joins them with the event type and channel bytes row by row."""
    count = rows.num_rows
    customer_id, code, occurred_at, amounts, channel = (
        _whole(rows[name]) for name in ("customer_id", "code", "at", "amount", "channel")
    )
    with_id = [] if first_id is None else [("n0", ">i4"), ("id", ">i8")]
    head = np.empty(
        count, dtype=[("fields", ">i2"), *with_id, ("n1", ">i4"), ("customer", ">i8"), ("n2", ">i4")]
    )
    head["fields"], head["n1"], head["customer"] = 5, 8, customer_id.to_numpy(zero_copy_only=False)
    if first_id is not None:
        head["fields"], head["n0"], head["id"] = 6, 8, _ids(first_id, count)
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


def _utc_text(values: Any) -> Any:
    """Timestamps as text Postgres reads, in UTC wall time (formatting in a zone is slow)."""
    return pc.binary_join_element_wise(pc.cast(values.cast(pa.timestamp("us")), pa.string()), "Z", "")
