"""Two-factor sign-in with real TOTP codes computed here (django-otp's own TOTP class): set-up with a QR
code and the secret as text, the code asked after the password (pages and API), single-use recovery
codes, throttling of wrong codes, and the manager's switch that makes managers and admins use it."""

import re
import time
from base64 import b32decode

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts.models import AuditEntry, Notification, RecoveryCodeDevice, SecurityPolicy
from accounts.two_factor import (
    recovery_code_hash,
    security_policy_update,
    totp_enrolment_confirm,
    totp_enrolment_start,
)

pytestmark = pytest.mark.django_db

SETUP = reverse("accounts:two_factor_setup")
VERIFY = reverse("accounts:two_factor_verify")
QUEUE = reverse("tickets:queue")


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows for this device now (or `steps_ahead` periods from now)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    """A person with a confirmed authenticator (its first code spent) and their recovery codes."""
    device = totp_enrolment_start(user=user)
    return totp_enrolment_confirm(user=user, device=device, code=code_for(device))


def password_login(user, password: str) -> Client:
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": user.username, "password": password})
    assert response.status_code == 302
    return client


def _unthrottle(device) -> None:
    type(device).objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )


# --- setting it up ---------------------------------------------------------------------------------------


def test_setup_page_shows_a_qr_code_and_the_secret_as_text(client_for, agent):
    response = client_for(agent).get(SETUP)
    html = response.content.decode()
    device = TOTPDevice.objects.get(user=agent, confirmed=False)
    # the QR code is an inline SVG made on the server, and the secret is the device's key in base32
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert re.search(r'<div id="totp-qr"[^>]*>\s*<svg', html)
    secret = re.search(r'<code[^>]*id="totp-secret">([A-Z2-7 ]+)</code>', html)[1].replace(" ", "")
    assert b32decode(secret + "=" * (-len(secret) % 8)) == device.bin_key


def test_setup_page_keeps_the_secret_between_visits(client_for, agent):
    client = client_for(agent)
    client.get(SETUP)
    client.get(SETUP)
    assert TOTPDevice.objects.filter(user=agent).count() == 1


def test_confirming_with_a_real_code_turns_it_on_and_shows_recovery_codes_once(client_for, agent):
    # given the set-up page was opened
    client = client_for(agent)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=agent)
    # when the code the app shows is entered with the password
    response = client.post(SETUP, {"code": code_for(device), "password": "pw-agent-123"})
    # then the device is confirmed, ten recovery codes are shown (and only their hashes stored)
    html = response.content.decode()
    codes = re.findall(r'<code class="user-select-all">([a-z2-9-]+)</code>', html)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert len(set(codes)) == 10
    stored = RecoveryCodeDevice.objects.get(user=agent).code_hashes
    assert sorted(stored) == sorted(recovery_code_hash(c) for c in codes)
    assert not any(c in str(stored) for c in codes)
    # and the session that set it up counts as verified; the audit trail says so
    assert client.get(QUEUE).status_code == 200
    assert AuditEntry.objects.filter(action="two_factor.enable", object_id=str(agent.pk)).exists()


def test_a_wrong_code_does_not_turn_it_on(client_for, agent):
    client = client_for(agent)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=agent)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    response = client.post(SETUP, {"code": wrong, "password": "pw-agent-123"})
    assert response.status_code == 422
    assert 'data-error-for="code"' in response.content.decode()
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed


def test_setup_asks_for_the_password(client_for, agent):
    client = client_for(agent)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=agent)
    response = client.post(SETUP, {"code": code_for(device), "password": "not-mine"})
    assert response.status_code == 422
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed


# --- signing in ------------------------------------------------------------------------------------------


def test_after_the_password_every_page_waits_for_the_code(agent):
    # given a person with an authenticator
    device, _codes = enrolled(agent)
    # when they sign in with the password only
    client = password_login(agent, "pw-agent-123")
    # then a page sends them to the code page, the API refuses, and the code page shows nothing of the portal
    response = client.get(QUEUE)
    assert response.status_code == 302 and response.url == f"{VERIFY}?next=%2Frequests%2Fqueue%2F"
    assert client.get("/api/v1/me/").status_code == 403
    page = client.get(VERIFY).content.decode()
    assert 'id="two-factor-verify"' in page and 'id="main-nav"' not in page and "Notifications" not in page


def test_the_next_code_from_the_app_lets_them_in(agent):
    device, _codes = enrolled(agent)
    client = password_login(agent, "pw-agent-123")
    session_before = client.cookies["sessionid"].value
    # when the app's code is entered (the next period's: the enrolment spent the current one)
    response = client.post(VERIFY, {"code": code_for(device, steps_ahead=1), "next": QUEUE})
    # then they land where they were going, under a new session key
    assert response.status_code == 302 and response.url == QUEUE
    assert client.get(QUEUE).status_code == 200
    assert client.get("/api/v1/me/").status_code == 200
    assert client.cookies["sessionid"].value != session_before


def test_a_code_is_accepted_once(agent):
    device, _codes = enrolled(agent)
    code = code_for(device, steps_ahead=1)
    first = password_login(agent, "pw-agent-123")
    assert first.post(VERIFY, {"code": code}).status_code == 302
    # when the same code is replayed in another session
    second = password_login(agent, "pw-agent-123")
    response = second.post(VERIFY, {"code": code})
    # then it is refused
    assert response.status_code == 422
    assert second.get(QUEUE).status_code == 302


def test_wrong_codes_slow_the_device_down(agent):
    device, _codes = enrolled(agent)
    client = password_login(agent, "pw-agent-123")
    right = code_for(device, steps_ahead=1)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert client.post(VERIFY, {"code": wrong}).status_code == 422
    # then even the right code has to wait (429 with Retry-After) right after a wrong one
    response = client.post(VERIFY, {"code": right})
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert client.get(QUEUE).status_code == 302


def test_a_recovery_code_lets_them_in_once_and_tells_them(agent):
    _device, codes = enrolled(agent)
    client = password_login(agent, "pw-agent-123")
    # when a recovery code is typed (case and spaces do not matter)
    response = client.post(VERIFY, {"code": codes[0].upper().replace("-", " ")})
    # then it signs them in, is used up, and the person is told
    assert response.status_code == 302 and client.get(QUEUE).status_code == 200
    assert len(RecoveryCodeDevice.objects.get(user=agent).code_hashes) == 9
    assert Notification.objects.filter(recipient=agent, verb="two_factor.recovery_code_used").exists()
    other = password_login(agent, "pw-agent-123")
    _unthrottle(RecoveryCodeDevice.objects.get(user=agent))
    assert other.post(VERIFY, {"code": codes[0]}).status_code == 422


def test_the_login_page_flow_without_two_factor_is_unchanged(requester):
    client = password_login(requester, "pw-req-123")
    assert client.get(reverse("tickets:my_requests")).status_code == 200


def test_turning_it_off_needs_the_password_and_a_code(agent):
    device, codes = enrolled(agent)
    client = password_login(agent, "pw-agent-123")
    client.post(VERIFY, {"code": code_for(device, steps_ahead=1)})
    disable = reverse("accounts:two_factor_disable")
    # a wrong password keeps it on
    assert client.post(disable, {"password": "nope", "code": codes[1]}).status_code == 422
    assert TOTPDevice.objects.filter(user=agent).exists()
    # the password with a recovery code turns it off, and the person is told
    response = client.post(disable, {"password": "pw-agent-123", "code": codes[1]})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=agent).exists()
    assert not RecoveryCodeDevice.objects.filter(user=agent).exists()
    assert Notification.objects.filter(recipient=agent, verb="two_factor.disable").exists()


def test_new_recovery_codes_replace_the_old_ones(agent):
    device, old = enrolled(agent)
    client = password_login(agent, "pw-agent-123")
    client.post(VERIFY, {"code": code_for(device, steps_ahead=1)})
    response = client.post(reverse("accounts:recovery_codes_regenerate"), {"password": "pw-agent-123"})
    new = re.findall(r'<code class="user-select-all">([a-z2-9-]+)</code>', response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    stored = RecoveryCodeDevice.objects.get(user=agent).code_hashes
    assert recovery_code_hash(old[0]) not in stored and recovery_code_hash(new[0]) in stored


# --- the API's token endpoint -----------------------------------------------------------------------------

TOKEN = "/api/v1/auth/token/"


def test_the_token_endpoint_asks_for_the_code(agent):
    enrolled(agent)
    response = APIClient().post(TOKEN, {"username": "agent", "password": "pw-agent-123"}, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["otp"]
    assert "token" not in response.json()


def test_the_token_endpoint_refuses_a_wrong_code_and_a_recovery_code(agent):
    device, codes = enrolled(agent)
    wrong = f"{(int(code_for(device, 1)) + 1) % 1_000_000:06d}"
    response = APIClient().post(
        TOKEN, {"username": "agent", "password": "pw-agent-123", "otp": wrong}, format="json"
    )
    assert response.status_code == 400 and "token" not in response.json()
    _unthrottle(device)
    response = APIClient().post(
        TOKEN, {"username": "agent", "password": "pw-agent-123", "otp": codes[0]}, format="json"
    )
    assert response.status_code == 400 and "token" not in response.json()
    assert len(RecoveryCodeDevice.objects.get(user=agent).code_hashes) == 10


def test_the_token_endpoint_issues_a_token_with_the_right_code(agent):
    device, _codes = enrolled(agent)
    response = APIClient().post(
        TOKEN, {"username": "agent", "password": "pw-agent-123", "otp": code_for(device, 1)}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    me = APIClient(HTTP_AUTHORIZATION=f"Token {token}").get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["username"] == "agent"


# --- the manager's switch ---------------------------------------------------------------------------------


@pytest.fixture
def required(manager) -> SecurityPolicy:
    return security_policy_update(by=manager, two_factor_for_staff=True)


def test_when_required_a_manager_without_an_authenticator_must_set_one_up_first(required, make_user):
    boss2 = make_user("boss2", role="manager", team="MarTech support")
    client = password_login(boss2, "pw-boss2-123")
    response = client.get(QUEUE)
    assert response.status_code == 302 and response.url.startswith(SETUP)
    assert client.get("/api/v1/me/").status_code == 403
    page = client.get(SETUP)
    assert page.status_code == 200 and 'id="main-nav"' not in page.content.decode()
    # once set up, the portal opens
    device = TOTPDevice.objects.get(user=boss2)
    client.post(SETUP, {"code": code_for(device), "password": "pw-boss2-123"})
    assert client.get(QUEUE).status_code == 200


def test_when_required_admins_are_held_too_and_others_are_not(required, admin_user, agent, requester):
    assert password_login(admin_user, "pw-itadmin-123").get("/admin/").url.startswith(SETUP)
    assert password_login(agent, "pw-agent-123").get(QUEUE).status_code == 200
    assert password_login(requester, "pw-req-123").get(reverse("tickets:my_requests")).status_code == 200


def test_when_required_the_token_endpoint_refuses_a_manager_without_an_authenticator(required, manager):
    response = APIClient().post(TOKEN, {"username": "boss", "password": "pw-boss-123"}, format="json")
    assert response.status_code == 403 and "token" not in response.json()


def test_the_deployment_setting_requires_it_whatever_the_switch(settings, manager):
    settings.TWO_FACTOR_REQUIRED_FOR_STAFF = True
    assert not SecurityPolicy.objects.filter(two_factor_for_staff=True).exists()
    assert password_login(manager, "pw-boss-123").get(QUEUE).url.startswith(SETUP)


def test_a_manager_switches_it_on_the_security_page(client_for, manager, django_capture_on_commit_callbacks):
    client = client_for(manager)
    page = client.get(reverse("accounts:security_policy"))
    assert page.status_code == 200 and 'data-username="boss"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:security_policy"), {"two_factor_for_staff": "on"})
    assert response.status_code == 302
    assert SecurityPolicy.objects.get(pk=1).two_factor_for_staff
    assert AuditEntry.objects.filter(action="security_policy.update", actor=manager).exists()
    # and sessions already signed in follow at once: the manager is sent to set it up
    assert cache.get("security:two_factor_for_staff") == 1
    assert client.get(QUEUE).url.startswith(SETUP)


def test_agents_and_requesters_cannot_open_the_security_page(client_for, agent, requester):
    assert client_for(agent).get(reverse("accounts:security_policy")).status_code == 403
    assert (
        client_for(requester)
        .post(reverse("accounts:security_policy"), {"two_factor_for_staff": "on"})
        .status_code
        == 403
    )
    assert not SecurityPolicy.objects.filter(two_factor_for_staff=True).exists()


def test_a_manager_resets_someones_lost_phone(client_for, manager, make_user):
    boss2 = make_user("boss2", role="manager", team="MarTech support")
    enrolled(boss2)
    response = client_for(manager).post(reverse("accounts:two_factor_reset", args=[boss2.pk]))
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=boss2).exists()
    assert AuditEntry.objects.filter(
        action="two_factor.disable", actor=manager, object_id=str(boss2.pk)
    ).exists()


def test_an_agent_cannot_reset_someone_else(client_for, agent, manager):
    enrolled(manager)
    assert client_for(agent).post(reverse("accounts:two_factor_reset", args=[manager.pk])).status_code == 403
    assert TOTPDevice.objects.filter(user=manager).exists()


def test_the_security_page_lists_staff_in_a_fixed_number_of_queries(
    client_for, manager, make_user, django_assert_max_num_queries
):
    for n in range(5):
        enrolled(make_user(f"boss{n + 2}", role="manager", team="MarTech support"))
    client = client_for(manager)
    client.get(reverse("accounts:security_policy"))  # warm the permission cache
    # session, user, policy row, staff list with their enrolment (one query), notifications badge,
    # and the sessions' bookkeeping at most
    with django_assert_max_num_queries(8):
        response = client.get(reverse("accounts:security_policy"))
    assert response.content.decode().count("data-username=") == 6
