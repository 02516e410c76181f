"""Keeping the k-th latest event ranks right through a load: the insert trigger paused for bulk
loads, the ranks refreshed, or computed from the loaded rows on a first load."""

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crm_tags import ranks
from crm_tags.importers.bulk_indexes import _bulk_indexes
from crm_tags.importers.copy_formats import _copy_lines, _utc_text


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
