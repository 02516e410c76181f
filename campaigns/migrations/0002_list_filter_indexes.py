# Indexes for the campaign list's channel filter (array contains) and name search (icontains).

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
    ]

    operations = [
        TrigramExtension(),
        migrations.AddIndex(
            model_name="campaign",
            index=django.contrib.postgres.indexes.GinIndex(fields=["channels"], name="campaign_channels_gin"),
        ),
        migrations.AddIndex(
            model_name="campaign",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["name"], name="campaign_name_trgm", opclasses=["gin_trgm_ops"]
            ),
        ),
    ]
