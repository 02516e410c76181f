"""Customer value: the value-model fits, per-customer computed values and lead score rules (issue 19)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm_tags", "0014_identity"),
    ]

    operations = [
        migrations.CreateModel(
            name="CustomerValue",
            fields=[
                (
                    "customer",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="value",
                        serialize=False,
                        to="crm_tags.customer",
                        verbose_name="customer",
                    ),
                ),
                ("recency_score", models.PositiveSmallIntegerField(null=True, verbose_name="recency score")),
                (
                    "frequency_score",
                    models.PositiveSmallIntegerField(null=True, verbose_name="frequency score"),
                ),
                (
                    "monetary_score",
                    models.PositiveSmallIntegerField(null=True, verbose_name="monetary score"),
                ),
                ("segment", models.CharField(max_length=32, null=True, verbose_name="RFM segment")),
                (
                    "expected_purchases_90d",
                    models.FloatField(null=True, verbose_name="expected purchases in 90 days"),
                ),
                ("p_alive", models.FloatField(null=True, verbose_name="probability of being active")),
                ("expected_spend", models.FloatField(null=True, verbose_name="expected spend per order")),
                ("clv_12m", models.FloatField(null=True, verbose_name="12-month customer lifetime value")),
                ("lead_score", models.FloatField(default=0, verbose_name="lead score")),
                ("computed_at", models.DateTimeField(verbose_name="computed at")),
                ("as_of", models.DateField(verbose_name="as of")),
            ],
            options={
                "verbose_name": "customer value",
                "verbose_name_plural": "customer values",
            },
        ),
        migrations.CreateModel(
            name="LeadScoreRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                (
                    "kind",
                    models.CharField(
                        choices=[("event", "per event"), ("attribute", "attribute condition")],
                        max_length=10,
                        verbose_name="kind",
                    ),
                ),
                (
                    "event_type",
                    models.CharField(blank=True, default="", max_length=64, verbose_name="event type"),
                ),
                ("condition", models.JSONField(blank=True, null=True, verbose_name="condition")),
                ("points", models.DecimalField(decimal_places=2, max_digits=10, verbose_name="points")),
                (
                    "half_life_days",
                    models.PositiveIntegerField(blank=True, null=True, verbose_name="half-life (days)"),
                ),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "lead score rule",
                "verbose_name_plural": "lead score rules",
                "ordering": ["id"],
            },
        ),
        migrations.CreateModel(
            name="ValueModelFit",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("as_of", models.DateField(verbose_name="as of")),
                (
                    "time_unit",
                    models.CharField(
                        choices=[("weeks", "weeks"), ("days", "days")], max_length=5, verbose_name="time unit"
                    ),
                ),
                ("params", models.JSONField(default=dict, verbose_name="parameters")),
                ("customers", models.PositiveBigIntegerField(default=0, verbose_name="customers")),
                ("fitted_at", models.DateTimeField(auto_now_add=True, verbose_name="fitted at")),
                ("seconds", models.FloatField(default=0)),
            ],
            options={
                "ordering": ["-fitted_at", "-id"],
                "get_latest_by": ["fitted_at", "id"],
            },
        ),
    ]
