"""Fixtures shared by every app's tests: people per role, API clients, a browser."""

import os
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.utils import timezone, translation
from rest_framework.test import APIClient

from accounts.models import Team, User
from accounts.services import user_create
from config.celery import app as celery_app

# Background work runs inline in tests unless a test starts a real worker.
celery_app.conf.task_always_eager = True
celery_app.conf.task_eager_propagates = True


@pytest.fixture(scope="session", autouse=True)
def _data_dirs() -> None:
    from django.conf import settings

    for path in (settings.STATIC_ROOT, settings.MEDIA_ROOT):
        os.makedirs(path, exist_ok=True)


@pytest.fixture(scope="session", autouse=True)
def _report_work_dir(tmp_path_factory) -> None:
    """Report jobs write their temporary files in this run's own directory: another test run's sweep on
    this machine (which removes directories of jobs its database does not know as running) never sees them."""
    from django.conf import settings

    settings.REPORT_WORK_DIR = str(tmp_path_factory.mktemp("report-work"))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker) -> None:
    """Transactional tests end by emptying every table with TRUNCATE, which the audit trail refuses
    unless the connection says `martech.audit_truncate = on` (docs/security.md): the test database does."""
    from django.db import connection

    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            cursor.execute(f"ALTER DATABASE {name} SET martech.audit_truncate = 'on'")
        connection.close()


@pytest.fixture(autouse=True)
def _fast_hashing_and_clean_cache(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()


@pytest.fixture(autouse=True)
def _default_language_and_time_zone() -> Iterator[None]:
    """A test request activates its user's language and zone on this thread; the next test starts afresh."""
    yield
    translation.deactivate()
    timezone.deactivate()


@pytest.fixture
def make_user(db):
    """Create a person with a role and a team: make_user("alice", role="agent", team="MarTech support")."""

    def _make(
        username: str,
        *,
        role: str = "requester",
        team: str = "E-commerce ops",
        pii: bool = False,
        email: str | None = None,
    ) -> User:
        return user_create(
            username=username,
            role=role,
            team_name=team,
            password="pw-" + username + "-123",
            email=email if email is not None else f"{username}@example.com",
            pii=pii,
        )

    return _make


@pytest.fixture
def support_team(db) -> Team:
    team, _ = Team.objects.get_or_create(name="MarTech support", defaults={"is_support": True})
    if not team.is_support:
        team.is_support = True
        team.save(update_fields=["is_support"])
    return team


@pytest.fixture
def requester(make_user) -> User:
    return make_user("req", role="requester", team="E-commerce ops")


@pytest.fixture
def other_requester(make_user) -> User:
    return make_user("brand", role="requester", team="Brand marketing")


@pytest.fixture
def agent(make_user, support_team) -> User:
    return make_user("agent", role="agent", team=support_team.name)


@pytest.fixture
def manager(make_user, support_team) -> User:
    return make_user("boss", role="manager", team=support_team.name, pii=True)


@pytest.fixture
def admin_user(make_user, support_team) -> User:
    return make_user("itadmin", role="admin", team=support_team.name)


def api_client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user=user)
    return client


@pytest.fixture
def api_for():
    """api_for(user) -> an APIClient authenticated as that person (None: anonymous)."""
    return api_client_for


@pytest.fixture
def client_for(client):
    """client_for(user) -> the Django test client logged in as that person."""
    from django.test import Client

    def _login(user: User) -> Client:
        c = Client()
        c.force_login(user)
        return c

    return _login


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never Playwright's own download)."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser tab; `page.base_url` is the live server."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(15_000)
    # an assertion waits as long as an action does: the suite runs in two processes, and a page whose
    # process shares the cores with the other's work can take more than expect's own 5 s default
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    tab = context.new_page()
    yield tab
    context.close()


def in_english(*people: User) -> User:
    """Their pages in English (people are created with Chinese, the default): for tests that read texts.
    Returns the first, so `agent = in_english(make_user(...))` reads naturally."""
    for person in people:
        if person.language != "en":
            person.language = "en"
            person.save(update_fields=["language"])
    return people[0]


def browser_login(page, username: str, password: str) -> None:
    """Log in through the real login form."""
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#main-nav")
