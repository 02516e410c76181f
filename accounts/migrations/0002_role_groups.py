from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "requester": [],
    "agent": ["work_queue"],
    "manager": ["work_queue", "manage_support", "view_dashboards"],
    "admin": [],
}
ADMIN_MODELS = [("accounts", "user"), ("accounts", "team"), ("auth", "group")]


def create_role_groups(apps, schema_editor):
    # Permissions are normally made after all migrations; make them now so the groups can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = list(Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames))
        if role == "admin":
            for app_label, model in ADMIN_MODELS:
                perms += list(Permission.objects.filter(content_type__app_label=app_label, content_type__model=model, codename__regex=r"^(add|change|delete|view)_(user|team|group)$"))
        group.permissions.set(perms)


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
