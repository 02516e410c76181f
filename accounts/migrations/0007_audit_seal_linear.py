# The audit chain's seal was quadratic in the entries one transaction writes: every entry's seal updated
# the chain head's one row, and a row updated N times in one transaction leaves N versions that each
# later update walks (a million entries in one transaction: hours at commit). Now the head is locked
# and read once per transaction, carried forward in transaction-local settings, and written once, by
# the seal of the last entry still pending (counted at insert; savepoint rollbacks undo the count).

from django.db import migrations

SEAL_SQL = r"""
CREATE OR REPLACE FUNCTION accounts_audit_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.content_digest := accounts_audit_digest(NEW.object_id, NEW.changes);
  NEW.seq := NULL;
  NEW.prev_hash := '';
  NEW.entry_hash := '';
  NEW.redacted_at := NULL;
  NEW.redacted_by := '';
  PERFORM set_config('martech.audit_pending',
    (coalesce(nullif(current_setting('martech.audit_pending', true), ''), '0')::bigint + 1)::text, true);
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION accounts_audit_seal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head_seq bigint;
  head_hash text;
  link text;
  pending bigint;
BEGIN
  IF coalesce(current_setting('martech.audit_head_seq', true), '') = '' THEN
    SELECT seq, entry_hash INTO head_seq, head_hash FROM accounts_auditchainhead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
      -- emptied (a test database's flush): start again from the last sealed entry, or from nothing
      INSERT INTO accounts_auditchainhead (id, seq, entry_hash, updated_at)
      SELECT 1, coalesce(max(seq), 0),
             coalesce((SELECT entry_hash FROM accounts_auditentry WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1),
                      repeat('0', 64)),
             now()
      FROM accounts_auditentry
      ON CONFLICT (id) DO NOTHING;
      SELECT seq, entry_hash INTO head_seq, head_hash FROM accounts_auditchainhead WHERE id = 1 FOR UPDATE;
    END IF;
  ELSE
    -- this transaction holds the head's lock since its first seal: the head is where that seal left it
    head_seq := current_setting('martech.audit_head_seq')::bigint;
    head_hash := current_setting('martech.audit_head_hash');
  END IF;
  link := accounts_audit_link(head_hash, head_seq + 1, NEW.created_at, NEW.actor_id, NEW.action,
                              NEW.object_type, NEW.content_digest);
  PERFORM set_config('martech.audit_sealing', 'on', true);
  UPDATE accounts_auditentry SET seq = head_seq + 1, prev_hash = head_hash, entry_hash = link WHERE id = NEW.id;
  pending := coalesce(nullif(current_setting('martech.audit_pending', true), ''), '1')::bigint - 1;
  PERFORM set_config('martech.audit_pending', greatest(pending, 0)::text, true);
  IF pending <= 0 THEN
    UPDATE accounts_auditchainhead SET seq = head_seq + 1, entry_hash = link, updated_at = now() WHERE id = 1;
    PERFORM set_config('martech.audit_head_seq', '', true);
    PERFORM set_config('martech.audit_head_hash', '', true);
  ELSE
    PERFORM set_config('martech.audit_head_seq', (head_seq + 1)::text, true);
    PERFORM set_config('martech.audit_head_hash', link, true);
  END IF;
  PERFORM set_config('martech.audit_sealing', '', true);
  RETURN NULL;
END $$;
"""

# The previous definitions (0005), for going back.
REVERSE_SQL = r"""
CREATE OR REPLACE FUNCTION accounts_audit_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.content_digest := accounts_audit_digest(NEW.object_id, NEW.changes);
  NEW.seq := NULL;
  NEW.prev_hash := '';
  NEW.entry_hash := '';
  NEW.redacted_at := NULL;
  NEW.redacted_by := '';
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION accounts_audit_seal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head_seq bigint;
  head_hash text;
  link text;
BEGIN
  SELECT seq, entry_hash INTO head_seq, head_hash FROM accounts_auditchainhead WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO accounts_auditchainhead (id, seq, entry_hash, updated_at)
    SELECT 1, coalesce(max(seq), 0),
           coalesce((SELECT entry_hash FROM accounts_auditentry WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1),
                    repeat('0', 64)),
           now()
    FROM accounts_auditentry
    ON CONFLICT (id) DO NOTHING;
    SELECT seq, entry_hash INTO head_seq, head_hash FROM accounts_auditchainhead WHERE id = 1 FOR UPDATE;
  END IF;
  link := accounts_audit_link(head_hash, head_seq + 1, NEW.created_at, NEW.actor_id, NEW.action,
                              NEW.object_type, NEW.content_digest);
  PERFORM set_config('martech.audit_sealing', 'on', true);
  UPDATE accounts_auditentry SET seq = head_seq + 1, prev_hash = head_hash, entry_hash = link WHERE id = NEW.id;
  UPDATE accounts_auditchainhead SET seq = head_seq + 1, entry_hash = link, updated_at = now() WHERE id = 1;
  PERFORM set_config('martech.audit_sealing', '', true);
  RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_oidc_identity")]

    operations = [migrations.RunSQL(SEAL_SQL, REVERSE_SQL)]
