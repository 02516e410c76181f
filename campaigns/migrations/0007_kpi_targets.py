# Placeholder for the KPI targets work (issue 21): no operations. Targets stay in the existing
# Campaign.kpi_targets JSON field (one source for the plan form, the KPI form, the API and reviews);
# campaigns.kpi compares them with the summary's actuals.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_abtest_design"),
    ]

    operations = []
