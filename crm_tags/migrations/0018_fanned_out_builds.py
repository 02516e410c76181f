"""Builds fanned out over customer-id ranges (crm_tags/fanout.py): the ranges, and an unlogged scratch
table of each build's matches (lost in a crash, as a crashed build is failed anyway)."""

import django.db.models.deletion
from django.db import migrations, models

MATCHES = """
CREATE UNLOGGED TABLE crm_tags_buildmatch (build_id bigint NOT NULL, customer_id bigint NOT NULL);
CREATE INDEX crm_tags_buildmatch_build ON crm_tags_buildmatch (build_id, customer_id);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("crm_tags", "0017_events_by_month"),
    ]

    operations = [
        migrations.CreateModel(
            name="TagBuildPart",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveSmallIntegerField(verbose_name="range")),
                ("low", models.BigIntegerField(verbose_name="from customer id")),
                ("high", models.BigIntegerField(verbose_name="to customer id (excluded)")),
                (
                    "status",
                    models.CharField(
                        choices=[("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")],
                        default="queued",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                ("matched", models.PositiveIntegerField(blank=True, null=True, verbose_name="matched")),
                ("started_at", models.DateTimeField(blank=True, null=True, verbose_name="started at")),
                ("seconds", models.FloatField(blank=True, null=True, verbose_name="seconds")),
                (
                    "build",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="parts", to="crm_tags.tagbuild"
                    ),
                ),
            ],
            options={
                "verbose_name": "build range",
                "verbose_name_plural": "build ranges",
                "ordering": ["build", "number"],
                "constraints": [models.UniqueConstraint(fields=("build", "number"), name="crm_buildpart_build_number")],
            },
        ),
        migrations.RunSQL(MATCHES, "DROP TABLE crm_tags_buildmatch;"),
    ]
