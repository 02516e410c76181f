# E-mail intake (tickets/intake_email/): channel `email` and the table of handled inbound mails.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0008_alert_intake"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ticket",
            name="channel",
            field=models.CharField(
                choices=[
                    ("web", "Web"),
                    ("api", "API"),
                    ("im", "Chat"),
                    ("meeting", "Meeting"),
                    ("alert", "Monitoring alert"),
                    ("email", "E-mail"),
                ],
                default="web",
                max_length=10,
                verbose_name="channel",
            ),
        ),
        migrations.CreateModel(
            name="InboundMail",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("message_id", models.CharField(max_length=255, unique=True, verbose_name="Message-ID")),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("ticket", "Opened a request"),
                            ("comment", "Added a reply"),
                            ("ignored", "Ignored"),
                            ("rejected", "Rejected"),
                        ],
                        max_length=10,
                        verbose_name="outcome",
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=200, verbose_name="reason")),
                ("received_at", models.DateTimeField(auto_now_add=True, verbose_name="received")),
                (
                    "comment",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="tickets.comment",
                    ),
                ),
                (
                    "ticket",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="inbound_mails",
                        to="tickets.ticket",
                        verbose_name="request",
                    ),
                ),
            ],
            options={
                "verbose_name": "inbound e-mail",
                "verbose_name_plural": "inbound e-mails",
                "ordering": ["-received_at", "-id"],
            },
        ),
    ]
