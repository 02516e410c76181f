"""Identity resolution (OneID): identifier kinds with their merge rules, the block list of junk values,
profiles' identifiers and the merge records that let an unmerge restore both profiles."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# kind: (name, merges, scoped by app id, at most per profile)
BUILTIN_KINDS = {
    "email": ("E-mail", True, False, 5),
    "phone": ("Phone", True, False, 5),
    "wechat_openid": ("WeChat openid", True, True, 20),
    "wechat_unionid": ("WeChat unionid", True, False, 1),
    "member_no": ("Member number", True, False, 1),
    "external_id": ("External id", True, False, None),
}
BLOCKED = [("email", "test@test.com"), ("phone", "+8613800000000"), ("", "null")]


def seed(apps, schema_editor):
    kinds = apps.get_model("crm_tags", "IdentifierKind")
    rules = apps.get_model("crm_tags", "MergeRule")
    blocked = apps.get_model("crm_tags", "BlockedIdentifier")
    for slug, (name, merges, scoped, limit) in BUILTIN_KINDS.items():
        kind = kinds.objects.create(slug=slug, name=name, builtin=True)
        rules.objects.create(kind=kind, merges=merges, scoped_by_app=scoped, max_per_profile=limit)
    blocked.objects.bulk_create([blocked(kind=k, value=v) for k, v in BLOCKED])


class Migration(migrations.Migration):
    dependencies = [
        ("crm_tags", "0013_import_jobs_in_the_browser"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="IdentifierKind",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("slug", models.SlugField(max_length=32, unique=True, verbose_name="kind")),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                ("builtin", models.BooleanField(default=False)),
            ],
            options={
                "verbose_name": "identifier kind",
                "verbose_name_plural": "identifier kinds",
                "ordering": ["slug"],
            },
        ),
        migrations.CreateModel(
            name="BlockedIdentifier",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(blank=True, default="", max_length=32, verbose_name="kind")),
                ("value", models.CharField(max_length=254, verbose_name="value")),
            ],
            options={
                "verbose_name": "blocked identifier",
                "verbose_name_plural": "blocked identifiers",
                "constraints": [
                    models.UniqueConstraint(fields=("kind", "value"), name="crm_blocked_kind_value")
                ],
            },
        ),
        migrations.CreateModel(
            name="MergeRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("merges", models.BooleanField(default=True, verbose_name="merges profiles")),
                ("scoped_by_app", models.BooleanField(default=False, verbose_name="scoped by app id")),
                (
                    "max_per_profile",
                    models.PositiveSmallIntegerField(
                        blank=True, null=True, verbose_name="at most per profile"
                    ),
                ),
                (
                    "kind",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="merge_rule",
                        to="crm_tags.identifierkind",
                    ),
                ),
            ],
            options={
                "verbose_name": "merge rule",
                "verbose_name_plural": "merge rules",
            },
        ),
        migrations.CreateModel(
            name="CustomerIdentifier",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(max_length=32, verbose_name="kind")),
                ("value", models.CharField(max_length=254, verbose_name="value")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "customer",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="identifiers",
                        to="crm_tags.customer",
                    ),
                ),
            ],
            options={
                "verbose_name": "customer identifier",
                "verbose_name_plural": "customer identifiers",
                "ordering": ["kind", "value"],
                "indexes": [models.Index(fields=["customer", "kind"], name="crm_identifier_customer")],
                "constraints": [
                    models.UniqueConstraint(fields=("kind", "value"), name="crm_identifier_kind_value")
                ],
            },
        ),
        migrations.CreateModel(
            name="CustomerMerge",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("merged_external_id", models.CharField(max_length=64, verbose_name="merged external id")),
                ("merged_customer_id", models.BigIntegerField()),
                ("snapshot", models.JSONField(default=dict)),
                ("moved", models.JSONField(default=dict)),
                ("source", models.CharField(default="manual", max_length=32, verbose_name="source")),
                ("at", models.DateTimeField(verbose_name="merged at")),
                ("unmerged_at", models.DateTimeField(blank=True, null=True, verbose_name="unmerged at")),
                (
                    "by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "survivor",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="merges",
                        to="crm_tags.customer",
                    ),
                ),
                (
                    "unmerged_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "customer merge",
                "verbose_name_plural": "customer merges",
                "ordering": ["-at", "-id"],
                "indexes": [models.Index(fields=["survivor", "-at"], name="crm_merge_survivor_at")],
            },
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
