# Routing (per-team setting, agents' skills, availability, capacity) and request types with their fields.
import django.contrib.postgres.indexes
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TYPE_CHOICES = [
    ("system_config", "System configuration"),
    ("data_support", "Data support"),
    ("incident", "Incident"),
    ("feature", "Feature"),
    ("consultation", "Consultation"),
]
URGENCY_CHOICES = [("urgent", "Urgent"), ("routine", "Routine"), ("planned", "Planned")]


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0010_oncall_escalation"),
        ("accounts", "0008_notification_kind_params"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Skill",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=60, unique=True, verbose_name="name")),
            ],
            options={"verbose_name": "skill", "verbose_name_plural": "skills", "ordering": ["name"]},
        ),
        migrations.CreateModel(
            name="TeamRouting",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "mode",
                    models.CharField(
                        choices=[
                            ("round_robin", "Round-robin"),
                            ("load", "Least loaded"),
                            ("skill", "By skill, then least loaded"),
                        ],
                        default="round_robin",
                        max_length=12,
                        verbose_name="routing",
                    ),
                ),
                (
                    "assign_on_create",
                    models.BooleanField(
                        default=False,
                        help_text="Otherwise the request is assigned when it is triaged.",
                        verbose_name="assign when filed",
                    ),
                ),
                (
                    "lead",
                    models.ForeignKey(
                        blank=True,
                        help_text="Told when nobody can take a request; empty: the managers.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="team lead",
                    ),
                ),
                (
                    "last_user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "team",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="routing",
                        to="accounts.team",
                        verbose_name="team",
                    ),
                ),
            ],
            options={"verbose_name": "team routing", "verbose_name_plural": "team routing"},
        ),
        migrations.CreateModel(
            name="AgentRouting",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("away", models.BooleanField(default=False, verbose_name="away")),
                ("away_since", models.DateTimeField(blank=True, null=True, verbose_name="away since")),
                (
                    "capacity",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="The most open weighted load (urgent 3, routine 2, planned 1); empty: no limit.",
                        null=True,
                        verbose_name="capacity",
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="routing",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="agent",
                    ),
                ),
                (
                    "skills",
                    models.ManyToManyField(
                        blank=True, related_name="agents", to="tickets.skill", verbose_name="skills"
                    ),
                ),
            ],
            options={"verbose_name": "agent routing", "verbose_name_plural": "agent routing"},
        ),
        migrations.CreateModel(
            name="TypeSkill",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("type", models.CharField(choices=TYPE_CHOICES, max_length=20, verbose_name="type")),
                (
                    "skill",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tickets.skill",
                        verbose_name="skill",
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="type_skills",
                        to="accounts.team",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("team", "type", "skill"), name="type_skill_unique")
                ]
            },
        ),
        migrations.CreateModel(
            name="RoutingMiss",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "ticket",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="routing_miss",
                        to="tickets.ticket",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="RequestType",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                ("description", models.CharField(blank=True, max_length=300, verbose_name="description")),
                (
                    "default_type",
                    models.CharField(
                        blank=True, choices=TYPE_CHOICES, max_length=20, verbose_name="default type"
                    ),
                ),
                (
                    "default_urgency",
                    models.CharField(
                        blank=True, choices=URGENCY_CHOICES, max_length=10, verbose_name="default urgency"
                    ),
                ),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "default_assignee",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="default assignee",
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="request_types",
                        to="accounts.team",
                        verbose_name="team",
                    ),
                ),
                (
                    "skills",
                    models.ManyToManyField(
                        blank=True, related_name="+", to="tickets.skill", verbose_name="required skills"
                    ),
                ),
            ],
            options={
                "verbose_name": "request type",
                "verbose_name_plural": "request types",
                "ordering": ["name", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("team", "name"), name="request_type_team_name")
                ],
            },
        ),
        migrations.CreateModel(
            name="RequestField",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.SlugField(
                        help_text="Lower-case letters, digits and _; used in the API and in queue filters (cf_<name>).",
                        max_length=40,
                        verbose_name="name",
                    ),
                ),
                ("label", models.CharField(max_length=100, verbose_name="label")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("text", "Text"),
                            ("number", "Number"),
                            ("date", "Date"),
                            ("choice", "Choice"),
                            ("user", "Person"),
                            ("campaign", "Campaign"),
                        ],
                        default="text",
                        max_length=10,
                        verbose_name="kind",
                    ),
                ),
                ("required", models.BooleanField(default=False, verbose_name="required")),
                ("choices", models.JSONField(blank=True, default=list, verbose_name="choices")),
                ("position", models.PositiveSmallIntegerField(default=0, verbose_name="position")),
                (
                    "request_type",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="fields",
                        to="tickets.requesttype",
                    ),
                ),
            ],
            options={
                "verbose_name": "request field",
                "verbose_name_plural": "request fields",
                "ordering": ["position", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("request_type", "name"), name="request_field_type_name"),
                    models.CheckConstraint(
                        condition=models.Q(("name__regex", "^[a-z][a-z0-9_]*$")), name="request_field_name"
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="ticket",
            name="request_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="tickets",
                to="tickets.requesttype",
                verbose_name="request type",
            ),
        ),
        migrations.AddField(
            model_name="ticket",
            name="custom_fields",
            field=models.JSONField(blank=True, default=dict, verbose_name="custom fields"),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["custom_fields"], name="ticket_custom_fields", opclasses=["jsonb_path_ops"]
            ),
        ),
    ]
