"""Big loads drop the secondary indexes and keys of the table they fill and rebuild them after: one
index build and one set-based check instead of millions of random index inserts."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from config.task_queue import enqueue
from crm_tags.importers.sql_session import _step
from crm_tags.partitions import estimate

log = logging.getLogger(__name__)


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
    partitioned, existing = estimate(cursor, table)
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
            # a partitioned index's definition reads "ON ONLY parent": rebuilt for every partition
            cursor.execute(definition.replace(" ON ONLY ", " ON "))
    with _step(f"restore constraints of {table}"):
        for name, definition in constraints:
            # Postgres takes no NOT VALID foreign key on a partitioned table: checked here, in one pass
            proven = keys_proven and not partitioned and definition.startswith("FOREIGN KEY")
            cursor.execute(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
                + (" NOT VALID" if proven else "")
            )
            if proven:
                _validate_after_commit(table, name)
    log.info("bulk load of %s rows into %s: indexes and foreign keys rebuilt", staged, table)


def _validate_after_commit(table: str, name: str) -> None:
    enqueue("crm_tags.tasks.validate_constraint", table, name)
