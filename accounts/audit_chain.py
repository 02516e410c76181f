"""The audit trail's hash chain: checking it, and the one sanctioned way to redact an entry.

The database does the chaining (accounts/migrations/0005_audit_chain_two_factor_sessions.py):

- at insert, `content_digest` = SHA-256 of the entry's object id and changes (what an erasure may redact);
- when the writing transaction commits, a deferred trigger takes the row lock of the chain head
  (AuditChainHead), gives the entry the next `seq`, `prev_hash` = the head's hash and `entry_hash` =
  SHA-256 of (prev_hash, seq, created_at, actor, action, object type, content_digest). Concurrent writers
  queue on that one row lock for the few microseconds of their commit, so the chain cannot fork, and a
  long transaction does not hold it while it works;
- triggers refuse UPDATE, DELETE and TRUNCATE of entries and head, except the sealing itself and a
  redaction announced in the same transaction by `redaction()` below.

A redaction may change only an entry's changes and object id and must mark it (`redacted_at`,
`redacted_by`); its digest and hash stay, so the chain still holds, and `audit_chain_verify` reports
such an entry as redacted (the content no longer matches its digest, lawfully) rather than broken.
"""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction

from accounts.models import AuditChainHead

log = logging.getLogger(__name__)

GENESIS = "0" * 64
REDACTION_SETTING = "martech.audit_redaction"


@contextmanager
def redaction(reference: str) -> Iterator[None]:
    """Within this block (and the caller's transaction) audit entries may be redacted by `reference`
    (say "privacy_request:42"); the permission ends with the block."""
    if not reference or len(reference) > 64:
        raise ValueError("a redaction needs a reference of 1 to 64 characters")
    # In a savepoint: should the block fail, its rollback takes the setting back with it.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [REDACTION_SETTING, reference])
        yield
        cursor.execute("SELECT set_config(%s, '', true)", [REDACTION_SETTING])


@dataclass(frozen=True)
class Break:
    seq: int | None
    entry_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"entry #{self.seq}" if self.seq is not None else "an unsealed entry"
        if self.entry_id is not None:
            where += f" (id {self.entry_id})"
        return f"{where}: {self.reason}"


@dataclass
class ChainReport:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    redacted: dict[str, list[int]] = field(default_factory=dict)  # reference -> seqs
    broken: Break | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


_WALK = """
SELECT id, seq, prev_hash, entry_hash, content_digest, redacted_at IS NOT NULL, redacted_by,
       accounts_audit_digest(object_id, changes),
       accounts_audit_link(prev_hash, seq, created_at, actor_id, action, object_type, content_digest)
FROM accounts_auditentry
ORDER BY seq NULLS LAST, id
"""


def _walk(report: ChainReport, rows: Iterable[tuple], anchors: dict[int, str]) -> Break | None:
    previous_hash, expected = GENESIS, 1
    for entry_id, seq, prev_hash, entry_hash, digest, redacted, redacted_by, content, link in rows:
        if seq is None:
            return Break(None, entry_id, "never sealed into the chain (its sealing trigger did not run)")
        if seq != expected:
            return Break(seq, entry_id, f"entries #{expected} to #{seq - 1} are missing")
        if prev_hash != previous_hash:
            return Break(seq, entry_id, "does not link to the entry before it (prev_hash differs)")
        if entry_hash != link:
            return Break(seq, entry_id, "altered: its hash no longer matches its fields")
        if redacted:
            report.redacted.setdefault(redacted_by, []).append(seq)
        elif content != digest:
            return Break(seq, entry_id, "altered: its changes or object id no longer match their digest")
        if seq in anchors and anchors[seq] != entry_hash:
            return Break(seq, entry_id, "differs from the anchor recorded for it (the chain was rewritten)")
        report.checked += 1
        report.head_seq, report.head_hash = seq, entry_hash
        previous_hash, expected = entry_hash, seq + 1
    return None


def audit_chain_verify(*, anchors: dict[int, str] | None = None) -> ChainReport:
    """Walk the whole chain in order and report the first broken link, if any. `anchors` maps entry
    numbers to hashes recorded earlier (outside the database): a chain recomputed after tampering
    differs from them. One consistent snapshot, streamed (a server-side cursor)."""
    anchors = anchors or {}
    report = ChainReport()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:  # the chain and its head in one snapshot
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with connection.chunked_cursor() as cursor:
            cursor.execute(_WALK)
            report.broken = _walk(report, _rows(cursor), anchors)
        if report.broken is None:
            report.broken = _head_break(report)
        missing = [seq for seq in anchors if seq > report.head_seq]
        if report.broken is None and missing:
            report.broken = Break(
                min(missing), None, "this anchored entry is missing (the chain was cut short)"
            )
    return report


def _head_break(report: ChainReport) -> Break | None:
    """The chain alone cannot show that its last entries were removed: its head row can."""
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        return Break(report.head_seq, None, "the chain's head row is missing") if report.head_seq else None
    if head.seq > report.head_seq:
        return Break(
            report.head_seq + 1,
            None,
            f"entries #{report.head_seq + 1} to #{head.seq} are missing from the end",
        )
    if (head.seq, head.entry_hash) != (report.head_seq, report.head_hash):
        return Break(report.head_seq, None, "the chain's head does not match its last entry")
    return None


def _rows(cursor) -> Iterator[tuple]:
    while batch := cursor.fetchmany(2000):
        yield from batch


def audit_chain_head() -> tuple[int, str]:
    """The last sealed entry's number and hash (what to record as an anchor outside the database)."""
    head = AuditChainHead.objects.filter(pk=1).first()
    return (head.seq, head.entry_hash) if head is not None else (0, GENESIS)
