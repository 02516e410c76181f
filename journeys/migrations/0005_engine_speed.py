# The engine's speed (issue 20): no database FK checks on the engine's own high-volume links (a trigger per
# inserted row was a third of writing a million enrolments); Django still cascades deletes. Its own
# operations only.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0004_audience_activation"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="destination",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="journeys.destination",
            ),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="enrolment",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="journeys.enrolment",
            ),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="request",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="items",
                to="journeys.webhookrequest",
            ),
        ),
        migrations.AlterField(
            model_name="enrolment",
            name="journey",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="enrolments",
                to="journeys.journey",
            ),
        ),
        migrations.AlterField(
            model_name="enrolment",
            name="version",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="journeys.journeyversion",
            ),
        ),
        migrations.AlterField(
            model_name="steprun",
            name="enrolment",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="runs",
                to="journeys.enrolment",
            ),
        ),
        migrations.AlterField(
            model_name="steprun",
            name="journey",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="journeys.journey",
            ),
        ),
    ]
