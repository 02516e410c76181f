"""Per-customer lifetime totals of the loaded events: added up in Arrow, merged set-based."""

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crm_tags.importers.bulk_indexes import _bulk_indexes
from crm_tags.importers.copy_formats import NULL, _copy_lines, _utc_text
from crm_tags.importers.sql_session import _local_settings, _step

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


TOTAL_INDEXES = ("crm_total_type_last",)


TOTAL_COLUMNS = (
    "customer_id, event_type, events, amount_count, amount_sum, amount_min, amount_max, first_at, last_at"
)


def _merge_totals(cursor: Any, groups: int, lines: memoryview, *, keys_proven: bool = False) -> None:
    """Add the new totals (COPY text lines in TOTAL_COLUMNS order) into the lifetime totals. A first big
    load copies straight into the empty table (its indexes, unique constraint and foreign key dropped
    and built after). A later big one is one MERGE (one hash join) with the key and customer indexes
    kept: the rows' new versions stay on their half-empty page (HOT, see migration 0019), so only the
    index on the last event's time, which changes, and the foreign key are dropped and built again. A
    small one is one INSERT … ON CONFLICT. `keys_proven`: the caller proved every customer in this
    transaction (the events' own key), so the totals' key comes back NOT VALID and is checked after
    commit."""
    cursor.execute("SELECT EXISTS (SELECT 1 FROM crm_tags_customereventtotal)")
    empty = not cursor.fetchone()[0]
    with _bulk_indexes(
        cursor, "crm_tags_customereventtotal", TOTAL_INDEXES, groups, unique=empty, keys_proven=keys_proven
    ) as bulk:
        if bulk and empty:  # a first load: nothing to add to
            with cursor.copy(f"COPY crm_tags_customereventtotal ({TOTAL_COLUMNS}) FROM STDIN") as copy:
                copy.write(lines)
            return
        cursor.execute(
            "CREATE TEMP TABLE crm_new_totals (customer_id bigint, event_type text, n bigint, ac bigint, "
            "s numeric, mn numeric, mx numeric, first timestamptz, last timestamptz) ON COMMIT DROP"
        )
        with _step("copy new totals"), cursor.copy("COPY crm_new_totals FROM STDIN") as copy:
            copy.write(lines)
        cursor.execute("ANALYZE crm_new_totals")
        if not bulk:
            cursor.execute(
                f"INSERT INTO crm_tags_customereventtotal ({TOTAL_COLUMNS}) "  # noqa: S608
                "SELECT customer_id, event_type, n, ac, s, mn, mx, first, last FROM crm_new_totals "
                "ON CONFLICT (event_type, customer_id) DO UPDATE SET " + TOTALS_MERGE
            )
        else:  # a hash join: a nested loop would look every new total up in the index one by one
            with (
                _step("merge totals in place"),
                _local_settings(cursor, enable_nestloop="off", work_mem="512MB", jit="off"),
            ):
                cursor.execute(TOTALS_MERGE_IN_PLACE)
        cursor.execute("DROP TABLE crm_new_totals")


TOTALS_MERGE_IN_PLACE = (
    "MERGE INTO crm_tags_customereventtotal t USING crm_new_totals n "  # noqa: S608
    "ON t.customer_id = n.customer_id AND t.event_type = n.event_type "
    "WHEN MATCHED THEN UPDATE SET events = t.events + n.n, amount_count = t.amount_count + n.ac, "
    "amount_sum = CASE WHEN t.amount_sum IS NULL THEN n.s WHEN n.s IS NULL THEN t.amount_sum "
    "ELSE t.amount_sum + n.s END, amount_min = LEAST(t.amount_min, n.mn), "
    "amount_max = GREATEST(t.amount_max, n.mx), first_at = LEAST(t.first_at, n.first), "
    "last_at = GREATEST(t.last_at, n.last) "
    f"WHEN NOT MATCHED THEN INSERT ({TOTAL_COLUMNS}) "
    "VALUES (n.customer_id, n.event_type, n.n, n.ac, n.s, n.mn, n.mx, n.first, n.last)"
)
