"""Sign-ins throttled per address as well as per username and address: 429 with Retry-After, no hashing."""

from unittest import mock

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import login_throttle

pytestmark = pytest.mark.django_db
ATTACKER = "198.51.100.7"


@pytest.fixture
def hashes():
    """Counts password hashes (the tests' hasher is MD5; checking and the dummy hash both encode)."""
    with mock.patch.object(
        MD5PasswordHasher, "encode", autospec=True, side_effect=MD5PasswordHasher.encode
    ) as encode:
        yield encode


def _login(client, username: str, password: str = "wrong", ip: str = ATTACKER):
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def _token(username: str, password: str = "wrong", ip: str = ATTACKER):
    return APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )


def test_eighty_logins_with_different_usernames_from_one_address_are_not_all_hashed(client, settings, hashes):
    # given the default per-address limit
    limit = settings.LOGIN_THROTTLE_IP_FAILURES
    # when one address tries 80 usernames
    statuses = [_login(client, f"guess{i}").status_code for i in range(80)]
    # then only the first `limit` were looked at; the rest were refused before hashing
    assert hashes.call_count == limit
    assert statuses[:limit] == [200] * limit
    assert set(statuses[limit:]) == {429}


def test_a_throttled_address_gets_429_with_retry_after_and_no_hash(client, settings, hashes):
    settings.LOGIN_THROTTLE_IP_FAILURES = 3
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 600
    for i in range(3):
        _login(client, f"guess{i}")
    hashed = hashes.call_count
    response = _login(client, "a-new-name")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 600
    assert hashes.call_count == hashed


def test_the_throttle_also_refuses_the_right_password_from_that_address(client, settings, requester):
    settings.LOGIN_THROTTLE_IP_FAILURES = 2
    _login(client, "x1")
    _login(client, "x2")
    response = _login(client, "req", "pw-req-123")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_another_address_is_not_throttled(client, settings, requester):
    settings.LOGIN_THROTTLE_IP_FAILURES = 2
    _login(client, "x1")
    _login(client, "x2")
    assert _login(client, "req", "pw-req-123", ip="203.0.113.50").status_code == 302


def test_the_address_may_sign_in_again_once_the_window_is_over(client, settings, requester, monkeypatch):
    settings.LOGIN_THROTTLE_IP_FAILURES = 2
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 60
    now = {"t": 1_800_000_000.0}
    monkeypatch.setattr(login_throttle, "time", mock.Mock(time=lambda: now["t"]))
    _login(client, "x1")
    _login(client, "x2")
    assert _login(client, "req", "pw-req-123").status_code == 429
    now["t"] += 60
    assert _login(client, "req", "pw-req-123").status_code == 302


def test_the_token_endpoint_is_throttled_per_address_in_the_error_shape(settings, hashes):
    settings.LOGIN_THROTTLE_IP_FAILURES = 3
    for i in range(3):
        assert _token(f"guess{i}").status_code == 400
    hashed = hashes.call_count
    response = _token("a-new-name")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["errors"][0]["code"] == "throttled"
    assert hashes.call_count == hashed


def test_failures_on_the_page_and_the_api_count_together(client, settings):
    settings.LOGIN_THROTTLE_IP_FAILURES = 2
    _login(client, "x1")
    _token("x2")
    assert _token("x3").status_code == 429


def test_the_token_endpoint_locks_a_username_per_address_with_retry_after(settings, requester, hashes):
    # given fewer failures than the address limit, all on one username (axes: username + address)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _token("req")
    hashed = hashes.call_count
    response = _token("req", "pw-req-123")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME * 3600)
    assert hashes.call_count == hashed


def test_the_login_page_lockout_per_username_has_retry_after(client, settings, requester):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "req")
    response = _login(client, "req", "pw-req-123")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_behind_a_proxy_each_client_address_is_counted_apart(client, settings, requester):
    # given one proxy in front (every request comes from its address, the client's in X-Forwarded-For)
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_THROTTLE_IP_FAILURES = 2
    proxy = "10.0.0.2"
    for name in ("x1", "x2"):
        client.post(
            reverse("accounts:login"),
            {"username": name, "password": "wrong"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=ATTACKER,
        )
    # when another client signs in through the same proxy
    response = client.post(
        reverse("accounts:login"),
        {"username": "req", "password": "pw-req-123"},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="203.0.113.50",
    )
    # then the attacker's failures did not lock them out
    assert response.status_code == 302


def test_a_forged_forwarded_for_entry_does_not_escape_the_throttle(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_THROTTLE_IP_FAILURES = 2
    for i in range(3):
        # the attacker prepends a new made-up address each time; the proxy appends the real one
        response = client.post(
            reverse("accounts:login"),
            {"username": f"x{i}", "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, {ATTACKER}",
        )
    assert response.status_code == 429
