from django.db import migrations

# Two imports that touched the same customer and event type at once both ran the ranks' trigger before
# either committed: each computed the ranks from its own snapshot and inserted them, so the later one
# failed on crm_tags_eventrank_pkey (or, had it not, the ranks would have missed the other's events).
# Now the trigger takes a transaction-level advisory lock per ranked event type it touches (namespace
# 7302, crm_tags.ranks.WRITERS_LOCK_NAMESPACE; keys in one order, so two writers never wait on each
# other crosswise) before refreshing: a second writer of the type waits there until the first commits,
# and its refresh, whose statements each take a new snapshot (READ COMMITTED), then sees the first's
# events and ranks. Only the trigger changes: the bulk paths switch it off and refresh the ranks
# themselves while they hold the events table exclusively, as before.
TAKE_TURNS = """
CREATE OR REPLACE FUNCTION crm_tags_event_ranks_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    customer_ids bigint[];
    event_types text[];
    lock_key integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crm_tags_rankedcount) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(customer_id), array_agg(event_type) INTO customer_ids, event_types
        FROM (SELECT DISTINCT customer_id, event_type FROM new_rows) t;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(customer_id), array_agg(event_type) INTO customer_ids, event_types
        FROM (SELECT DISTINCT customer_id, event_type FROM old_rows) t;
    ELSE
        SELECT array_agg(customer_id), array_agg(event_type) INTO customer_ids, event_types
        FROM (SELECT customer_id, event_type FROM old_rows
              UNION SELECT customer_id, event_type FROM new_rows) t;
    END IF;
    FOR lock_key IN
        SELECT DISTINCT hashtext(t.event_type) FROM unnest(event_types) AS t(event_type)
        WHERE EXISTS (SELECT 1 FROM crm_tags_rankedcount p WHERE p.event_type = t.event_type)
        ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(7302, lock_key);
    END LOOP;
    PERFORM crm_tags_refresh_ranks(customer_ids, event_types);
    RETURN NULL;
END
$$;
"""

# 0004's trigger function.
UNDO = """
CREATE OR REPLACE FUNCTION crm_tags_event_ranks_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM crm_tags_rankedcount) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM crm_tags_refresh_ranks(array_agg(customer_id), array_agg(event_type))
        FROM (SELECT DISTINCT customer_id, event_type FROM new_rows) t;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM crm_tags_refresh_ranks(array_agg(customer_id), array_agg(event_type))
        FROM (SELECT DISTINCT customer_id, event_type FROM old_rows) t;
    ELSE
        PERFORM crm_tags_refresh_ranks(array_agg(customer_id), array_agg(event_type))
        FROM (SELECT customer_id, event_type FROM old_rows
              UNION SELECT customer_id, event_type FROM new_rows) t;
    END IF;
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("crm_tags", "0011_consent_and_erasure")]

    operations = [migrations.RunSQL(TAKE_TURNS, UNDO)]
