from decimal import Decimal

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_campaign_lock_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="abtest",
            name="planned_sample",
            field=models.PositiveIntegerField(
                blank=True,
                null=True,
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="planned sample per variant",
            ),
        ),
        migrations.AddField(
            model_name="abtest",
            name="baseline_rate",
            field=models.DecimalField(
                blank=True,
                decimal_places=6,
                max_digits=7,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0.000001")),
                    django.core.validators.MaxValueValidator(Decimal("0.999999")),
                ],
                verbose_name="expected control conversion rate",
            ),
        ),
        migrations.AddField(
            model_name="abtest",
            name="sequential",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Fixed sample (judge once, at the planned sample)"),
                    ("msprt", "Sequential (mSPRT, always valid: may be checked at any time)"),
                ],
                default="",
                max_length=10,
                verbose_name="sequential method",
            ),
        ),
    ]
