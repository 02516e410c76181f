from django.db import migrations

# The exact number of customers, kept by statement triggers in the transaction that changes it, so
# a preview's "share of all customers" does not count a million rows each time. Not a Django model:
# a test database flush truncates the customers (the trigger sets 0) and must keep this row.
COUNT = """
CREATE TABLE crm_tags_customercount (
    id smallint PRIMARY KEY CHECK (id = 1),
    customers bigint NOT NULL
);
INSERT INTO crm_tags_customercount VALUES (1, (SELECT count(*) FROM crm_tags_customer));

CREATE FUNCTION crm_tags_customer_count_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE crm_tags_customercount SET customers = customers + (SELECT count(*) FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE crm_tags_customercount SET customers = customers - (SELECT count(*) FROM old_rows);
    ELSE
        UPDATE crm_tags_customercount SET customers = 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER crm_tags_customer_count_insert AFTER INSERT ON crm_tags_customer
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_tags_customer_count_trigger();
CREATE TRIGGER crm_tags_customer_count_delete AFTER DELETE ON crm_tags_customer
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_tags_customer_count_trigger();
CREATE TRIGGER crm_tags_customer_count_truncate AFTER TRUNCATE ON crm_tags_customer
    FOR EACH STATEMENT EXECUTE FUNCTION crm_tags_customer_count_trigger();
"""

UNDO = """
DROP TRIGGER crm_tags_customer_count_insert ON crm_tags_customer;
DROP TRIGGER crm_tags_customer_count_delete ON crm_tags_customer;
DROP TRIGGER crm_tags_customer_count_truncate ON crm_tags_customer;
DROP FUNCTION crm_tags_customer_count_trigger();
DROP TABLE crm_tags_customercount;
"""


class Migration(migrations.Migration):
    dependencies = [("crm_tags", "0006_event_properties_default")]

    operations = [migrations.RunSQL(COUNT, UNDO)]
