import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Team, User
from accounts.roles import role_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_create_user_makes_team_role_and_pii():
    call_command(
        "create_user", "dora", "--role", "agent", "--team", "New team", "--password", "pw-dora-123", "--pii"
    )
    user = User.objects.get(username="dora")
    assert role_of(user) == "agent"
    assert user.team.name == "New team"
    assert user.has_perm("accounts.view_pii")
    assert user.check_password("pw-dora-123")


@pytest.mark.django_db
def test_create_user_keeps_a_language_unless_one_is_given():
    args = ["create_user", "gil", "--role", "agent", "--team", "T", "--password", "pw-gil-123"]
    call_command(*args, stdout=io.StringIO())
    assert User.objects.get(username="gil").language == "zh-hans"
    User.objects.filter(username="gil").update(language="en")
    call_command(*args, "--pii", stdout=io.StringIO())
    assert User.objects.get(username="gil").language == "en"
    call_command(*args, "--language", "zh-hans", stdout=io.StringIO())
    assert User.objects.get(username="gil").language == "zh-hans"


@pytest.mark.django_db
def test_create_user_unknown_role_makes_nothing():
    with pytest.raises(CommandError, match="Unknown role 'boss'"):
        call_command(
            "create_user", "eve", "--role", "boss", "--team", "Ghost team", "--password", "pw-eve-123"
        )
    assert not User.objects.filter(username="eve").exists()
    assert not Team.objects.filter(name="Ghost team").exists()


@pytest.mark.django_db
def test_create_user_bad_email_makes_nothing():
    with pytest.raises(CommandError, match="email"):
        call_command(
            "create_user",
            "fay",
            "--role",
            "agent",
            "--team",
            "Ghost team",
            "--password",
            "x1234567",
            "--email",
            "nope",
        )
    assert not User.objects.filter(username="fay").exists()
    assert not Team.objects.filter(name="Ghost team").exists()


@pytest.mark.django_db
def test_role_groups_exist_with_permissions():
    from django.contrib.auth.models import Group

    manager = Group.objects.get(name="manager")
    assert {p.codename for p in manager.permissions.all()} == {
        "work_queue",
        "manage_support",
        "view_dashboards",
    }
    assert set(Group.objects.values_list("name", flat=True)) >= {"requester", "agent", "manager", "admin"}


@pytest.mark.django_db
def test_seed_demo_accounts_is_idempotent(settings):
    out = io.StringIO()
    call_command("seed_demo", "--small", stdout=out)
    counts = (User.objects.count(), Team.objects.count())
    # demo people keep the language they were given, and one a person picked since (issue 18, item 16)
    languages = dict(User.objects.values_list("username", "language"))
    assert languages["brand"] == languages["admin"] == "en" and languages["requester"] == "zh-hans"
    User.objects.filter(username="requester").update(language="en")
    call_command("seed_demo", "--small", stdout=io.StringIO())
    assert (User.objects.count(), Team.objects.count()) == counts
    assert User.objects.get(username="requester").language == "en"
    assert "manager-demo-1" in out.getvalue()
    assert {
        role_of(u) for u in User.objects.filter(username__in=["requester", "agent", "manager", "admin"])
    } == {"requester", "agent", "manager", "admin"}
    assert Team.objects.filter(name_zh="电商运营").exists()


def test_makemigrations_is_clean():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_with_production_settings_is_clean():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-real-secret-" + "x" * 50,
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "SESSION_COOKIE_SECURE": "true",
        "CSRF_COOKIE_SECURE": "true",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for Playwright in tests only
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
