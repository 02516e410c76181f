"""The audit trail is a hash chain the web role cannot rewrite: UPDATE, DELETE and TRUNCATE are refused by
triggers, every tampering done behind the triggers' back is found by `audit_verify` (first broken link,
non-zero exit), concurrent writers never fork the chain, and an erasure's lawful redaction is reported as
redacted, not broken."""

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from accounts.audit_chain import GENESIS, audit_chain_head, audit_chain_verify, redaction
from accounts.models import AuditEntry
from accounts.services import audit_entries_scrub, audit_record

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sealed_now(db) -> None:
    """A test's transaction never commits: seal each entry at its statement's end instead of at commit
    (and check the other deferred constraints then too, so no trigger event is pending when a test alters
    the table)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _entries(actor, count: int = 3) -> list[AuditEntry]:
    made = [
        audit_record(actor=actor, action="ticket.update", object_type="tickets.ticket", object_id=n,
                     changes={"status": ["new", "triaged"], "n": n})
        for n in range(1, count + 1)
    ]  # fmt: skip
    return [AuditEntry.objects.get(pk=e.pk) for e in made]


def _behind_the_triggers(sql: str, params: list | None = None) -> None:
    """What someone who can switch the guard off (the database owner) could do."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE accounts_auditentry DISABLE TRIGGER accounts_audit_guard")
        cursor.execute(sql, params or [])
        cursor.execute("ALTER TABLE accounts_auditentry ENABLE TRIGGER accounts_audit_guard")


def _verify_fails() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("audit_verify")
    assert failure.value.returncode == 1
    return str(failure.value)


# --- the chain -----------------------------------------------------------------------------------------


def test_each_entry_links_to_its_predecessor(sealed_now, manager):
    # given a head before
    head_seq, head_hash = audit_chain_head()
    # when three entries are written
    first, second, third = _entries(manager)
    # then they are numbered after the head, each carrying its predecessor's hash
    assert [first.seq, second.seq, third.seq] == [head_seq + 1, head_seq + 2, head_seq + 3]
    assert first.prev_hash == head_hash
    assert (second.prev_hash, third.prev_hash) == (first.entry_hash, second.entry_hash)
    assert len({first.entry_hash, second.entry_hash, third.entry_hash}) == 3
    assert audit_chain_head() == (third.seq, third.entry_hash)


def test_the_application_cannot_choose_the_chain_fields(sealed_now, manager):
    # when a writer sends its own hashes and a redaction mark
    entry = AuditEntry.objects.create(
        actor=manager, action="x.y", object_type="x", object_id="1", changes={"a": 1},
        seq=999_999, prev_hash="f" * 64, entry_hash="e" * 64, content_digest="d" * 64, redacted_by="me",
    )  # fmt: skip
    entry.refresh_from_db()
    # then the database computed its own
    assert entry.seq != 999_999 and entry.entry_hash != "e" * 64 and entry.content_digest != "d" * 64
    assert entry.redacted_by == "" and entry.redacted_at is None
    assert audit_chain_verify().ok


def test_audit_verify_reports_an_intact_chain_with_its_head(sealed_now, manager):
    _entries(manager)
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    seq, entry_hash = audit_chain_head()
    assert "audit trail intact" in out.getvalue()
    assert f"head {seq}:{entry_hash}" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_entries_are_sealed_when_their_transaction_commits(manager):
    # given a transaction that writes an entry and has not committed yet
    with transaction.atomic():
        entry = audit_record(actor=manager, action="x.made", object_type="x", object_id="1")
        assert AuditEntry.objects.get(pk=entry.pk).seq is None
    # then its commit sealed it
    entry.refresh_from_db()
    assert entry.seq is not None and len(entry.entry_hash) == 64
    assert audit_chain_verify().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_do_not_fork_the_chain(manager):
    # given eight writers, each committing 15 entries at the same time as the others
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait(timeout=30)
            for n in range(15):
                with transaction.atomic():
                    audit_record(actor=None, action="load.write", object_type="w", object_id=f"{worker}-{n}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then every entry has its own number, without a gap, and the chain verifies
    assert errors == []
    seqs = list(AuditEntry.objects.filter(action="load.write").order_by("seq").values_list("seq", flat=True))
    assert len(seqs) == 120
    all_seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert all_seqs == list(range(1, len(all_seqs) + 1))
    assert audit_chain_verify().ok


@pytest.mark.django_db(transaction=True)
def test_one_transaction_of_many_entries_with_a_rolled_back_savepoint_seals_one_chain(manager):
    # given one transaction writing many entries, through a bulk insert of raw rows (how the privacy
    # bench writes a million: the seal used to update the head's row once per entry, quadratic), and a
    # savepoint whose entries are rolled back
    with transaction.atomic():
        audit_record(actor=manager, action="bulk.first", object_type="x", object_id="0")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO accounts_auditentry (created_at, actor_id, action, object_type, object_id, changes, "
                "content_digest, prev_hash, entry_hash, redacted_by) "
                "SELECT now(), NULL, 'bulk.row', 'x', n::text, '{}'::jsonb, '', '', '', '' "
                "FROM generate_series(1, 3000) AS n"
            )
        try:
            with transaction.atomic():
                audit_record(actor=manager, action="bulk.undone", object_type="x", object_id="u")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        audit_record(actor=manager, action="bulk.last", object_type="x", object_id="z")
    # then every entry that stayed is numbered without a gap, the undone one is gone, and the head is
    # the last entry: the chain verifies
    assert not AuditEntry.objects.filter(action="bulk.undone").exists()
    assert AuditEntry.objects.filter(action="bulk.row").count() == 3000
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    last = AuditEntry.objects.get(action="bulk.last")
    assert last.seq == seqs[-1]
    assert audit_chain_head() == (last.seq, last.entry_hash)
    assert audit_chain_verify().ok


# --- the web role cannot rewrite it ------------------------------------------------------------------


def test_update_by_raw_sql_is_refused(sealed_now, manager):
    entry = _entries(manager, 1)[0]
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                'UPDATE accounts_auditentry SET changes = \'{"status": "forged"}\' WHERE id = %s', [entry.pk]
            )
    assert AuditEntry.objects.get(pk=entry.pk).changes == entry.changes


def test_update_through_the_orm_is_refused_even_for_the_sealing_fields(sealed_now, manager):
    entry = _entries(manager, 1)[0]
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(entry_hash="0" * 64)
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="x.innocent")


def test_delete_is_refused(sealed_now, manager):
    entry = _entries(manager, 1)[0]
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM accounts_auditentry WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_truncate_is_refused(sealed_now, manager):
    _entries(manager, 1)
    with pytest.raises(DatabaseError, match="cannot be truncated"), transaction.atomic():
        with connection.cursor() as cursor:
            # (the test database allows it for its own teardown; a deployment does not)
            cursor.execute("SET LOCAL martech.audit_truncate = ''")
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # (no trigger event left pending)
            cursor.execute("TRUNCATE accounts_auditentry")
    assert AuditEntry.objects.exists()


def test_the_chain_head_cannot_be_moved(sealed_now, manager):
    _entries(manager, 1)
    with pytest.raises(DatabaseError, match="kept by the database"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE accounts_auditchainhead SET seq = seq - 1")


def test_a_person_who_acted_cannot_be_deleted(sealed_now, manager):
    from django.db.models import ProtectedError

    _entries(manager, 1)
    with pytest.raises(ProtectedError):
        manager.delete()


# --- tampering behind the triggers' back is found ---------------------------------------------------


def test_changed_changes_are_found_at_their_entry(sealed_now, manager):
    _first, second, _third = _entries(manager)
    _behind_the_triggers(
        'UPDATE accounts_auditentry SET changes = \'{"status": ["new", "closed"]}\' WHERE id = %s',
        [second.pk],
    )
    message = _verify_fails()
    assert f"entry #{second.seq} (id {second.pk})" in message
    assert "changes or object id no longer match" in message


def test_a_changed_actor_or_action_breaks_the_hash(sealed_now, manager, agent):
    _first, second, _third = _entries(manager)
    _behind_the_triggers("UPDATE accounts_auditentry SET actor_id = %s WHERE id = %s", [agent.pk, second.pk])
    message = _verify_fails()
    assert f"entry #{second.seq}" in message and "hash no longer matches" in message


def test_a_deleted_entry_is_a_gap(sealed_now, manager):
    _first, second, third = _entries(manager)
    _behind_the_triggers("DELETE FROM accounts_auditentry WHERE id = %s", [second.pk])
    message = _verify_fails()
    assert (
        f"entry #{third.seq}" in message and f"entries #{second.seq} to #{second.seq} are missing" in message
    )


def test_entries_cut_off_the_end_are_found_by_the_head(sealed_now, manager):
    _first, second, third = _entries(manager)
    _behind_the_triggers("DELETE FROM accounts_auditentry WHERE id = %s", [third.pk])
    message = _verify_fails()
    assert f"entries #{third.seq} to #{third.seq} are missing from the end" in message


def test_a_recomputed_chain_differs_from_its_anchor(sealed_now, manager):
    # given an anchor recorded outside the database (the hourly log line, or audit_verify's last line)
    first, second, third = _entries(manager)
    anchor = f"{second.seq}:{second.entry_hash}"
    # when someone rewrites an entry and recomputes every hash after it, head included
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE accounts_auditentry DISABLE TRIGGER USER")
        cursor.execute("ALTER TABLE accounts_auditchainhead DISABLE TRIGGER USER")
        relink = (
            "UPDATE accounts_auditentry SET entry_hash = accounts_audit_link(prev_hash, seq, created_at, "
            "actor_id, action, object_type, content_digest) WHERE id = %s"
        )
        cursor.execute(
            'UPDATE accounts_auditentry SET changes = \'{"status": "forged"}\', '
            'content_digest = accounts_audit_digest(object_id, \'{"status": "forged"}\') WHERE id = %s',
            [second.pk],
        )
        cursor.execute(relink, [second.pk])
        cursor.execute(
            "UPDATE accounts_auditentry e SET prev_hash = p.entry_hash FROM accounts_auditentry p "
            "WHERE p.id = %s AND e.id = %s",
            [second.pk, third.pk],
        )
        cursor.execute(relink, [third.pk])
        cursor.execute(
            "UPDATE accounts_auditchainhead SET entry_hash = (SELECT entry_hash FROM accounts_auditentry "
            "WHERE id = %s)",
            [third.pk],
        )
        cursor.execute("ALTER TABLE accounts_auditentry ENABLE TRIGGER USER")
        cursor.execute("ALTER TABLE accounts_auditchainhead ENABLE TRIGGER USER")
    # then the chain alone holds together, but not against the anchor
    assert audit_chain_verify().ok
    with pytest.raises(CommandError, match=f"entry #{second.seq} .*differs from the anchor"):
        call_command("audit_verify", "--anchor", anchor)


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_on_a_broken_chain(manager):
    # given committed entries, one altered behind the guard's back
    for n in range(3):
        audit_record(actor=manager, action="x.made", object_type="x", object_id=n, changes={"n": n})
    victim = AuditEntry.objects.order_by("seq")[1]
    _behind_the_triggers("UPDATE accounts_auditentry SET changes = '{\"n\": 42}' WHERE id = %s", [victim.pk])
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    # when the operator runs the command against that database
    result = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then it names the first broken link and fails
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"entry #{victim.seq} (id {victim.pk})" in result.stderr


# --- redaction: the one sanctioned change ---------------------------------------------------------------


def test_an_erasure_redacts_entries_and_verify_reports_them_redacted(sealed_now, manager):
    # given entries that name a customer
    kept = _entries(manager, 1)[0]
    named = audit_record(
        actor=manager, action="crm.customer_note", object_type="crm_tags.customer", object_id=7,
        changes={"email": ["planted@example.com", None]},
    )  # fmt: skip
    # when an erasure scrubs the person's values
    changed = audit_entries_scrub(
        values=["planted@example.com"], objects=[("crm_tags.customer", 7)], reference="privacy_request:5"
    )
    # then the entry lost the value, is marked, and the chain still verifies, listing it as redacted
    named.refresh_from_db()
    assert changed == 1
    assert "planted@example.com" not in str(named.changes)
    assert named.redacted_by == "privacy_request:5" and named.redacted_at is not None
    report = audit_chain_verify()
    assert report.ok and report.redacted == {"privacy_request:5": [named.seq]}
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "redacted by privacy_request:5: 1 entries" in out.getvalue()
    assert kept.seq not in report.redacted["privacy_request:5"]


def test_a_redaction_without_the_sanctioned_path_is_refused(sealed_now, manager):
    entry = _entries(manager, 1)[0]
    from django.utils import timezone

    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(
            changes={}, redacted_at=timezone.now(), redacted_by="privacy_request:1"
        )
    # (nor under another reference than the one announced, nor touching what the chain covers)
    with (
        pytest.raises(DatabaseError, match="cannot be changed"),
        transaction.atomic(),
        redaction("privacy_request:1"),
    ):
        AuditEntry.objects.filter(pk=entry.pk).update(
            changes={}, redacted_at=timezone.now(), redacted_by="other"
        )
    with (
        pytest.raises(DatabaseError, match="cannot be changed"),
        transaction.atomic(),
        redaction("privacy_request:1"),
    ):
        AuditEntry.objects.filter(pk=entry.pk).update(
            action="x.other", redacted_at=timezone.now(), redacted_by="privacy_request:1"
        )
    assert AuditEntry.objects.get(pk=entry.pk).redacted_at is None


def test_the_redaction_permission_ends_with_its_block(sealed_now, manager):
    entry = _entries(manager, 1)[0]
    from django.utils import timezone

    with redaction("privacy_request:1"):
        pass
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(
            changes={}, redacted_at=timezone.now(), redacted_by="privacy_request:1"
        )


def test_a_redacted_entry_altered_further_in_its_chained_fields_is_still_found(sealed_now, manager):
    entry = _entries(manager, 1)[0]
    audit_entries_scrub(values=["triaged"], objects=[("tickets.ticket", entry.object_id)], reference="r:1")
    _behind_the_triggers("UPDATE accounts_auditentry SET action = 'x.else' WHERE id = %s", [entry.pk])
    assert "hash no longer matches" in _verify_fails()


def test_an_empty_trail_verifies(db):
    report = audit_chain_verify()
    assert report.ok
    assert (report.checked, report.head_seq, report.head_hash) == (0, 0, GENESIS)


def test_the_hourly_anchor_logs_the_head(sealed_now, manager, caplog):
    from accounts.tasks import audit_chain_anchor

    _entries(manager, 2)
    seq, entry_hash = audit_chain_head()
    with caplog.at_level("INFO", logger="accounts.tasks"):
        anchor = audit_chain_anchor()
    assert anchor == f"{seq}:{entry_hash}" and seq >= 2
    assert f"audit chain head {seq}:{entry_hash}" in caplog.text
