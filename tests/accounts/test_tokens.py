"""API tokens: they expire, are stored as hashes, can be listed and revoked, and die with the password."""

import hashlib
import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditEntry
from accounts.tokens import api_token_issue

pytestmark = pytest.mark.django_db


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """The production hasher's algorithm, cheap enough for a test."""

    iterations = 10


def _as(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _sign_in(username: str = "req", password: str = "pw-req-123", **extra) -> dict:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password, **extra}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


# Issue ---------------------------------------------------------------------------------------------


def test_token_endpoint_returns_a_token_that_expires_after_the_configured_ttl(requester, settings):
    settings.API_TOKEN_TTL_HOURS = 24
    before = timezone.now()
    body = _sign_in()
    expires = parse_datetime(body["expires_at"])
    assert before + timedelta(hours=24) <= expires <= timezone.now() + timedelta(hours=24)
    assert _as(body["token"]).get("/api/v1/me/").json()["username"] == "req"


def test_the_default_ttl_is_ninety_days(requester):
    expires = parse_datetime(_sign_in()["expires_at"])
    assert timedelta(days=89, hours=23) < expires - timezone.now() <= timedelta(days=90)


def test_only_a_hash_of_the_key_is_stored(requester):
    key = _sign_in()["token"]
    row = ApiToken.objects.get(user=requester)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = " ".join(str(v) for v in ApiToken.objects.filter(pk=row.pk).values().first().values())
    assert key not in stored
    assert not Token.objects.exists()  # DRF's plain-text token table is not used any more


def test_each_sign_in_gets_its_own_named_token(requester):
    first = _sign_in(name="laptop script")
    second = _sign_in()
    assert first["token"] != second["token"]
    assert first["name"] == "laptop script"
    assert ApiToken.objects.filter(user=requester).count() == 2


def test_issuing_a_token_is_audited(requester):
    body = _sign_in(name="ci")
    entry = AuditEntry.objects.get(action="api_token.create")
    assert entry.object_id == str(body["id"])
    assert entry.changes["name"] == "ci" and entry.changes["user"] == "req"
    assert body["token"] not in str(entry.changes)


# Expiry and revocation -------------------------------------------------------------------------------


def test_an_expired_token_is_401(requester):
    token = api_token_issue(user=requester)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _as(token.key).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"


def test_a_token_of_a_deleted_key_or_garbage_is_401(requester):
    assert _as("0" * 40).get("/api/v1/me/").status_code == 401


def test_revoking_ones_own_token_ends_it(requester):
    keep = api_token_issue(user=requester, name="keep")
    drop = api_token_issue(user=requester, name="drop")
    response = _as(keep.key).delete(f"/api/v1/auth/tokens/{drop.pk}/")
    assert response.status_code == 204
    assert _as(drop.key).get("/api/v1/me/").status_code == 401
    assert _as(keep.key).get("/api/v1/me/").status_code == 200
    entry = AuditEntry.objects.get(action="api_token.revoke")
    assert entry.object_id == str(drop.pk) and entry.actor == requester


def test_signing_out_revokes_the_token_in_use(requester):
    token = api_token_issue(user=requester)
    client = _as(token.key)
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert client.get("/api/v1/me/").status_code == 401
    assert ApiToken.objects.get(pk=token.pk).revoke_reason == "logout"


def test_revoking_all_ones_tokens(requester):
    tokens = [api_token_issue(user=requester) for _ in range(3)]
    response = _as(tokens[0].key).delete("/api/v1/auth/tokens/")
    assert response.status_code == 200 and response.json() == {"revoked": 3}
    assert all(_as(t.key).get("/api/v1/me/").status_code == 401 for t in tokens)


def test_a_requester_cannot_revoke_someone_elses_token(requester, other_requester):
    theirs = api_token_issue(user=other_requester)
    response = _as(api_token_issue(user=requester).key).delete(f"/api/v1/auth/tokens/{theirs.pk}/")
    assert response.status_code == 404
    assert _as(theirs.key).get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize("staff", ["manager", "admin_user"])
def test_a_manager_or_admin_revokes_anyones_token(request, staff, requester):
    theirs = api_token_issue(user=requester)
    response = APIClient()
    response.force_authenticate(request.getfixturevalue(staff))
    assert response.delete(f"/api/v1/auth/tokens/{theirs.pk}/").status_code == 204
    assert _as(theirs.key).get("/api/v1/me/").status_code == 401
    assert ApiToken.objects.get(pk=theirs.pk).revoke_reason == "revoked_by_staff"


def test_a_manager_lists_and_revokes_all_of_a_persons_tokens(api_for, manager, requester):
    tokens = [api_token_issue(user=requester, name=f"t{i}") for i in range(2)]
    client = api_for(manager)
    listed = client.get("/api/v1/auth/tokens/?user=req").json()
    assert {row["name"] for row in listed["results"]} == {"t0", "t1"}
    assert client.delete("/api/v1/auth/tokens/?user=req").json() == {"revoked": 2}
    assert all(_as(t.key).get("/api/v1/me/").status_code == 401 for t in tokens)


def test_a_requester_may_not_list_someone_elses_tokens(api_for, requester, other_requester):
    api_token_issue(user=other_requester)
    assert api_for(requester).get("/api/v1/auth/tokens/?user=brand").status_code == 403
    assert api_for(requester).delete("/api/v1/auth/tokens/?user=brand").status_code == 403


# Listing ---------------------------------------------------------------------------------------------


def test_the_list_shows_ones_active_tokens_without_their_keys(api_for, requester, other_requester):
    mine = api_token_issue(user=requester, name="mine", scope="read")
    revoked = api_token_issue(user=requester, name="old")
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    theirs = api_token_issue(user=other_requester, name="theirs")
    response = api_for(requester).get("/api/v1/auth/tokens/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["id"], row["name"], row["scope"], row["prefix"]) == (mine.pk, "mine", "read", mine.key[:8])
    assert set(row) >= {"created_at", "expires_at", "last_used_at"}
    text = response.content.decode()
    assert mine.key not in text and theirs.key not in text and "theirs" not in text


def test_using_a_token_records_when_it_was_last_used(requester):
    token = api_token_issue(user=requester)
    assert token.last_used_at is None
    _as(token.key).get("/api/v1/me/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_token_list_queries(api_for, requester, django_assert_num_queries):
    for i in range(3):
        api_token_issue(user=requester, name=f"t{i}")
    client = api_for(requester)
    # 1 count for the page, 1 the tokens with their owner
    with django_assert_num_queries(2):
        response = client.get("/api/v1/auth/tokens/")
    assert response.json()["count"] == 3


# Scope -----------------------------------------------------------------------------------------------


def test_a_read_token_reads_but_may_not_write(requester):
    client = _as(api_token_issue(user=requester, scope="read").key)
    assert client.get("/api/v1/tickets/").status_code == 200
    response = client.post(
        "/api/v1/tickets/", {"title": "t", "type": "incident", "urgency": "routine"}, format="json"
    )
    assert response.status_code == 403
    assert "only read" in response.json()["detail"]


def test_a_read_token_may_still_sign_itself_out(requester):
    token = api_token_issue(user=requester, scope="read")
    assert _as(token.key).delete("/api/v1/auth/token/").status_code == 204
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_the_token_endpoint_issues_read_tokens_on_request(requester):
    body = _sign_in(scope="read")
    assert body["scope"] == "read"
    assert _as(body["token"]).delete("/api/v1/auth/tokens/").status_code == 403
    assert ApiToken.objects.get(pk=body["id"]).revoked_at is None


# Password change and deactivation --------------------------------------------------------------------


def test_changing_the_password_revokes_every_token(client_for, requester):
    tokens = [api_token_issue(user=requester) for _ in range(2)]
    response = client_for(requester).post(
        reverse("accounts:password_change"),
        {
            "old_password": "pw-req-123",
            "new_password1": "Fresh-Passw0rd-9",
            "new_password2": "Fresh-Passw0rd-9",
        },
    )
    assert response.status_code == 302
    assert all(_as(t.key).get("/api/v1/me/").status_code == 401 for t in tokens)
    assert set(ApiToken.objects.values_list("revoke_reason", flat=True)) == {"password_changed"}
    assert AuditEntry.objects.filter(action="api_token.revoke").count() == 2


def test_a_password_set_anywhere_revokes_every_token(requester):
    token = api_token_issue(user=requester)
    requester.set_password("Another-Passw0rd-1")
    requester.save()
    assert _as(token.key).get("/api/v1/me/").status_code == 401


def test_a_password_hash_upgrade_on_sign_in_keeps_the_tokens(requester, settings):
    # given a password stored with an older hasher, which a sign-in re-hashes with the preferred one
    token = api_token_issue(user=requester)
    settings.PASSWORD_HASHERS = [
        "tests.accounts.test_tokens.QuickPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert requester.check_password("pw-req-123")
    requester.refresh_from_db()
    assert requester.password.startswith("pbkdf2_sha256$")  # it was upgraded
    # then the tokens were not taken for stolen
    assert _as(token.key).get("/api/v1/me/").status_code == 200


def test_deactivating_a_person_revokes_their_tokens_for_good(requester):
    token = api_token_issue(user=requester)
    requester.is_active = False
    requester.save()
    assert ApiToken.objects.get(pk=token.pk).revoke_reason == "deactivated"
    requester.is_active = True
    requester.save()
    assert _as(token.key).get("/api/v1/me/").status_code == 401


# DRF's old tokens ------------------------------------------------------------------------------------


def test_the_migration_turns_old_permanent_tokens_into_hashed_expiring_ones(requester):
    legacy = Token.objects.create(user=requester)
    migration = importlib.import_module("accounts.migrations.0004_api_tokens")
    migration.adopt_legacy_tokens(apps, None)
    assert not Token.objects.exists()
    adopted = ApiToken.objects.get(user=requester)
    assert adopted.key_hash == hashlib.sha256(legacy.key.encode()).hexdigest()
    assert adopted.expires_at > timezone.now()
    assert _as(legacy.key).get("/api/v1/me/").status_code == 200


# The page --------------------------------------------------------------------------------------------


def test_the_page_issues_a_token_after_the_password_and_shows_the_key_once(client_for, requester):
    client = client_for(requester)
    response = client.post(
        reverse("accounts:api_tokens"), {"name": "report script", "scope": "read", "password": "pw-req-123"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(user=requester)
    key = response.context["issued"].key
    assert key in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert (token.name, token.scope) == ("report script", "read")
    again = client.get(reverse("accounts:api_tokens")).content.decode()
    assert "report script" in again and key not in again


def test_the_page_refuses_a_wrong_password(client_for, requester):
    response = client_for(requester).post(
        reverse("accounts:api_tokens"), {"name": "x", "scope": "write", "password": "wrong"}
    )
    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_the_page_revokes_ones_own_token_only(client_for, requester, other_requester):
    mine = api_token_issue(user=requester)
    theirs = api_token_issue(user=other_requester)
    client = client_for(requester)
    assert client.post(reverse("accounts:api_token_revoke", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("accounts:api_token_revoke", args=[mine.pk])).status_code == 302
    assert _as(mine.key).get("/api/v1/me/").status_code == 401
    assert _as(theirs.key).get("/api/v1/me/").status_code == 200
