"""Events partitioned by month, converted in place (crm_tags.partitions): the rows, their ids, the
indexes, the foreign key and the statement triggers stay as they were; progress is printed as the
rows are copied. Reversible."""

from django.db import migrations


def forward(apps, schema_editor):
    from crm_tags import partitions

    with schema_editor.connection.cursor() as cursor:
        partitions.convert_in_place(cursor, progress=_progress)


def backward(apps, schema_editor):
    from crm_tags import partitions

    with schema_editor.connection.cursor() as cursor:
        partitions.convert_back(cursor, progress=_progress)


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)  # noqa: T201 - a migration's progress on the console


class Migration(migrations.Migration):
    dependencies = [
        ("crm_tags", "0016_purchase_days"),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
