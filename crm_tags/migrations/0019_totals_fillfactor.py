"""Half-empty pages for the lifetime totals: a big load's merge rewrites most of them, and with room on
their page the new row versions stay there (HOT), so the merge keeps the key and customer indexes
instead of rebuilding them, and the table does not grow with every load."""

from django.db import migrations

FILLFACTOR = "ALTER TABLE crm_tags_customereventtotal SET (fillfactor = 50);"
FILLFACTOR_UNDO = "ALTER TABLE crm_tags_customereventtotal RESET (fillfactor);"


class Migration(migrations.Migration):
    dependencies = [("crm_tags", "0018_fanned_out_builds")]

    operations = [migrations.RunSQL(FILLFACTOR, FILLFACTOR_UNDO)]
