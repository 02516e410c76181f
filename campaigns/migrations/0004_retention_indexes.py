from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_customer_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="touchpoint",
            index=models.Index(fields=["occurred_at"], name="touch_occurred"),
        ),
        migrations.AddIndex(
            model_name="conversion",
            index=models.Index(fields=["occurred_at"], name="conv_occurred"),
        ),
    ]
