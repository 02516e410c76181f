"""Bulk loading of customers and events, all in the caller's transaction, so a file with any bad row
writes nothing and the per-customer totals never drift. Customers: every row validated while it is
streamed into a staging table, then merged set-based (INSERT ... ON CONFLICT). Events: a plain file is
checked and typed by Arrow and streamed straight into COPY; any other file, or one the fast checks find
a problem in, goes through the row-by-row validator that names every bad row.

One module per concern: validation (columns, limits, cell checks, the result), customers, events (the
validating path), fast_events and arrow_typing (the Arrow + COPY path), month_loads (big loads into the
partitioned table, month by month), copy_formats (COPY encodings),
totals, rank_upkeep, bulk_indexes (index and key rebuilds of big loads) and sql_session.
"""

from config.split_package import forward_patches
from crm_tags.importers import (
    arrow_typing,
    bulk_indexes,
    copy_formats,
    customers,
    events,
    fast_events,
    month_loads,
    rank_upkeep,
    sql_session,
    totals,
    validation,
)
from crm_tags.importers.arrow_typing import (
    FAST_BLOCK,
    _blocks,
    _customer_map,
    _NotFast,
    _read_block,
    _scan_file,
    _size,
    _steady_offset_range,
    _typed_block,
)
from crm_tags.importers.bulk_indexes import BULK_MIN_ROWS, CUSTOMER_INDEXES, EVENT_INDEXES, _bulk_indexes
from crm_tags.importers.copy_formats import NULL, _binary_rows, _copy_lines, _copy_text
from crm_tags.importers.customers import import_customers, import_member_ids
from crm_tags.importers.events import FAST_EVENTS, _insert_events, import_events
from crm_tags.importers.fast_events import (
    BULK_BLOCKS,
    FILE_BYTES_PER_CUSTOMER,
    INDEX_ORDER_CHUNK,
    _fast_import_events,
    _index_ordered,
)
from crm_tags.importers.month_loads import MONTH_MIN_ROWS
from crm_tags.importers.rank_upkeep import _first_load_ranks, _keep_ranks, _pause_ranks, _resume_ranks
from crm_tags.importers.totals import TOTALS_MERGE, _combined_totals, _merge_totals
from crm_tags.importers.validation import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    LIMITS,
    ImportResult,
    ProgressCallback,
    parse_timestamp,
    raise_rejected,
)

__all__ = [
    "BULK_BLOCKS",
    "BULK_MIN_ROWS",
    "CUSTOMER_COLUMNS",
    "CUSTOMER_INDEXES",
    "EVENT_COLUMNS",
    "EVENT_INDEXES",
    "FAST_BLOCK",
    "FAST_EVENTS",
    "FILE_BYTES_PER_CUSTOMER",
    "INDEX_ORDER_CHUNK",
    "MONTH_MIN_ROWS",
    "LIMITS",
    "NULL",
    "TOTALS_MERGE",
    "ImportResult",
    "ProgressCallback",
    "_NotFast",
    "_binary_rows",
    "_blocks",
    "_bulk_indexes",
    "_combined_totals",
    "_copy_lines",
    "_copy_text",
    "_customer_map",
    "_fast_import_events",
    "_first_load_ranks",
    "_index_ordered",
    "_insert_events",
    "_keep_ranks",
    "_merge_totals",
    "_pause_ranks",
    "_read_block",
    "_resume_ranks",
    "_scan_file",
    "_size",
    "_steady_offset_range",
    "_typed_block",
    "import_customers",
    "import_events",
    "import_member_ids",
    "parse_timestamp",
    "raise_rejected",
]

_MODULES = (
    arrow_typing,
    bulk_indexes,
    copy_formats,
    customers,
    events,
    fast_events,
    month_loads,
    rank_upkeep,
    sql_session,
    totals,
    validation,
)


forward_patches(__name__, _MODULES)  # a patch on the package reaches the module that reads the name
