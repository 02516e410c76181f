"""Web sessions: signed out after SESSION_IDLE_TIMEOUT_SECONDS without a request (and after their
lifetime), listed on the sessions page with device, address and last seen, and ended one at a time or
all but the current one; a password change ends the others."""

import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry, UserSession
from accounts.user_sessions import LAST_SEEN_KEY, SIGNED_IN_KEY, device_label, sessions_purge
from tests.conftest import in_english

pytestmark = pytest.mark.django_db

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
HOME = reverse("tickets:my_requests")
SESSIONS = reverse("accounts:sessions")


def signed_in(user, password: str, agent: str = FIREFOX_WINDOWS, address: str = "10.1.2.3") -> Client:
    """Signed in through the login form, pages in English (the texts below are asserted in English)."""
    in_english(user)
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    response = client.post(reverse("accounts:login"), {"username": user.username, "password": password})
    assert response.status_code == 302
    return client


def _age_session(client: Client, *, idle: int = 0, signed_in_ago: int = 0) -> None:
    session = client.session
    now = int(time.time())
    session[LAST_SEEN_KEY] = now - idle
    session[SIGNED_IN_KEY] = now - signed_in_ago
    session.save()


# --- idle timeout and lifetime ------------------------------------------------------------------------


def test_a_session_idle_past_the_timeout_is_signed_out(requester, settings):
    # given a session whose last request was longer ago than the idle timeout
    client = signed_in(requester, "pw-req-123")
    _age_session(client, idle=settings.SESSION_IDLE_TIMEOUT_SECONDS + 5)
    # when it makes a request
    response = client.get(HOME, follow=True)
    # then it was signed out, told why, and its row is gone
    assert response.redirect_chain[0][0].startswith(reverse("accounts:login"))
    assert "without activity" in response.content.decode()
    assert not UserSession.objects.filter(user=requester).exists()


def test_a_session_used_within_the_timeout_stays(requester, settings):
    client = signed_in(requester, "pw-req-123")
    _age_session(client, idle=settings.SESSION_IDLE_TIMEOUT_SECONDS - 60)
    assert client.get(HOME).status_code == 200


def test_the_default_idle_timeout_is_eight_hours(settings):
    assert settings.SESSION_IDLE_TIMEOUT_SECONDS == 8 * 3600


def test_a_session_past_its_lifetime_is_signed_out_even_when_busy(requester, settings):
    client = signed_in(requester, "pw-req-123")
    _age_session(client, idle=0, signed_in_ago=settings.SESSION_COOKIE_AGE + 5)
    assert client.get(HOME).status_code == 302


def test_a_timed_out_api_session_gets_no_data(requester, settings):
    client = signed_in(requester, "pw-req-123")
    _age_session(client, idle=settings.SESSION_IDLE_TIMEOUT_SECONDS + 5)
    assert client.get("/api/v1/me/").status_code in (401, 403)


def test_last_seen_is_written_at_most_once_a_minute(requester):
    client = signed_in(requester, "pw-req-123")
    row = UserSession.objects.get(user=requester)
    earlier = timezone.now() - timedelta(minutes=5)
    UserSession.objects.filter(pk=row.pk).update(last_seen_at=earlier)
    # a request within a minute of the last one writes nothing
    client.get(HOME)
    assert UserSession.objects.get(pk=row.pk).last_seen_at == earlier
    # one more than a minute after it moves last seen to now
    _age_session(client, idle=61)
    client.get(HOME)
    assert UserSession.objects.get(pk=row.pk).last_seen_at > timezone.now() - timedelta(seconds=5)
    assert client.session[LAST_SEEN_KEY] >= int(time.time()) - 5


# --- the sessions page ---------------------------------------------------------------------------------


def test_the_page_lists_ones_sessions_with_device_address_and_this_one_marked(requester, other_requester):
    phone = signed_in(requester, "pw-req-123", agent=SAFARI_IPHONE, address="10.9.9.9")
    laptop = signed_in(requester, "pw-req-123")
    signed_in(other_requester, "pw-brand-123", address="10.6.6.6")
    html = laptop.get(SESSIONS).content.decode()
    assert html.count("data-session=") == 2
    assert "Firefox on Windows" in html and "Safari on iOS" in html
    assert "10.1.2.3" in html and "10.9.9.9" in html and "10.6.6.6" not in html
    assert html.count("This session") == 1
    # no session key is ever shown
    assert phone.cookies["sessionid"].value not in html and laptop.cookies["sessionid"].value not in html


def test_sign_out_everywhere_else_ends_the_other_sessions_only(requester):
    # given the person signed in on three devices
    first = signed_in(requester, "pw-req-123")
    second = signed_in(requester, "pw-req-123", agent=SAFARI_IPHONE)
    third = signed_in(requester, "pw-req-123")
    # when they sign out everywhere else from the first
    response = first.post(reverse("accounts:sessions_revoke_others"))
    # then the others are signed out, the first is not, and the audit trail says so
    assert response.status_code == 302
    assert first.get(HOME).status_code == 200
    assert second.get(HOME).status_code == 302 and third.get(HOME).status_code == 302
    assert UserSession.objects.filter(user=requester).count() == 1
    assert AuditEntry.objects.get(action="session.revoke_others").changes == {"sessions": 2}


def test_one_session_is_signed_out(requester):
    first = signed_in(requester, "pw-req-123")
    second = signed_in(requester, "pw-req-123")
    other = UserSession.objects.get(session_key=second.cookies["sessionid"].value)
    response = first.post(reverse("accounts:session_revoke", args=[other.pk]))
    assert response.status_code == 302
    assert second.get(HOME).status_code == 302
    assert not Session.objects.filter(session_key=other.session_key).exists()
    assert first.get(HOME).status_code == 200


def test_someone_elses_session_cannot_be_signed_out(requester, other_requester):
    mine = signed_in(requester, "pw-req-123")
    theirs = signed_in(other_requester, "pw-brand-123")
    row = UserSession.objects.get(user=other_requester)
    assert mine.post(reverse("accounts:session_revoke", args=[row.pk])).status_code == 404
    assert theirs.get(HOME).status_code == 200


def test_signing_out_the_current_session_from_the_list_logs_out(requester):
    client = signed_in(requester, "pw-req-123")
    row = UserSession.objects.get(user=requester)
    response = client.post(reverse("accounts:session_revoke", args=[row.pk]))
    assert response.status_code == 302 and client.get(HOME).status_code == 302


def test_logging_out_removes_the_row(requester):
    client = signed_in(requester, "pw-req-123")
    client.post(reverse("accounts:logout"))
    assert not UserSession.objects.filter(user=requester).exists()


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(requester):
    here = signed_in(requester, "pw-req-123")
    elsewhere = signed_in(requester, "pw-req-123")
    response = here.post(
        reverse("accounts:password_change"),
        {
            "old_password": "pw-req-123",
            "new_password1": "Fresh-Passw0rd-9",
            "new_password2": "Fresh-Passw0rd-9",
        },
    )
    assert response.status_code == 302
    assert here.get(HOME).status_code == 200
    assert elsewhere.get(HOME).status_code == 302
    # the page lists just this session (re-recorded under its new key)
    assert here.get(SESSIONS).content.decode().count("data-session=") == 1
    assert list(UserSession.objects.filter(user=requester).values_list("session_key", flat=True)) == [
        here.cookies["sessionid"].value
    ]


def test_deactivation_ends_every_session(requester):
    client = signed_in(requester, "pw-req-123")
    requester.is_active = False
    requester.save()
    assert not UserSession.objects.filter(user=requester).exists()
    assert client.get(HOME).status_code == 302


def test_the_purge_forgets_idle_sessions_and_keeps_live_ones(requester, other_requester, settings):
    signed_in(requester, "pw-req-123")
    signed_in(other_requester, "pw-brand-123")
    stale = UserSession.objects.get(user=requester)
    UserSession.objects.filter(pk=stale.pk).update(
        last_seen_at=timezone.now() - timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS + 60)
    )
    assert sessions_purge() == 1
    assert list(UserSession.objects.values_list("user__username", flat=True)) == ["brand"]
    assert not Session.objects.filter(session_key=stale.session_key).exists()


def test_the_sessions_page_takes_a_fixed_number_of_queries(requester, django_assert_max_num_queries):
    clients = [signed_in(requester, "pw-req-123") for _ in range(4)]
    clients[0].get(SESSIONS)  # warm the permission cache
    # session, user, the sessions, the notifications badge
    with django_assert_max_num_queries(5):
        response = clients[0].get(SESSIONS)
    assert response.content.decode().count("data-session=") == 4


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (FIREFOX_WINDOWS, "Firefox on Windows"),
        (SAFARI_IPHONE, "Safari on iOS"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
    ],
)
def test_device_labels(user_agent, label):
    assert device_label(user_agent) == label


# --- rotating the secret key ------------------------------------------------------------------------------


@pytest.mark.parametrize("fallback, stays", [(True, True), (False, False)])
def test_a_rotated_secret_key_keeps_sessions_only_with_the_old_key_as_fallback(
    requester, settings, fallback, stays
):
    # given a session signed in under the old key
    old_key = settings.SECRET_KEY
    client = signed_in(requester, "pw-req-123")
    # when the key is rotated, with or without the old key as a fallback
    settings.SECRET_KEY = "rotated-" + old_key
    settings.SECRET_KEY_FALLBACKS = [old_key] if fallback else []
    response = client.get(HOME)
    # then the session survives only with the fallback
    assert (response.status_code == 200) is stays
    if not stays:
        assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db(transaction=True)
def test_requests_of_a_session_without_its_row_at_once_make_one_row(requester):
    # given a signed-in session whose row is missing (older than the rows, or signed in by a script), and
    # several of its requests arriving at the same moment (the 300-user load run: 500s on the unique key)
    import threading

    from django.db import connection
    from django.test import RequestFactory

    from accounts.user_sessions import _session_store, _touch

    store = _session_store()()
    store.create()
    start, errors = threading.Barrier(4), []

    def request_arrives() -> None:
        try:
            request = RequestFactory().get(HOME, HTTP_USER_AGENT=FIREFOX_WINDOWS)
            request.session = _session_store()(store.session_key)
            start.wait(timeout=30)
            _touch(request, requester, int(time.time()))
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=request_arrives) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then every request went through, and the session has one row
    assert errors == []
    assert UserSession.objects.filter(session_key=store.session_key, user=requester).count() == 1
