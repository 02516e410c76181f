"""Security headers, CSP without unsafe-inline scripts, cookie flags, CSRF on forms."""

import re

import pytest
from django.test import Client


@pytest.mark.django_db
def test_pages_carry_a_nonce_based_csp_without_unsafe_inline_scripts(client_for, agent):
    response = client_for(agent).get("/accounts/preferences/")
    policy = response.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]+)", policy).group(1)
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src
    assert "'nonce-" in script_src
    assert "frame-ancestors 'none'" in policy


@pytest.mark.django_db
def test_pages_have_no_inline_script_without_nonce(client_for, manager):
    html = client_for(manager).get("/accounts/preferences/").content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or "nonce=" in tag, tag
    assert " onclick=" not in html


@pytest.mark.django_db
def test_clickjacking_and_sniffing_protection(client):
    response = client.get("/accounts/login/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_session_cookie_is_http_only_and_lax(requester, settings):
    client = Client()
    client.post("/accounts/login/", {"username": "req", "password": "pw-req-123"})
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


@pytest.mark.django_db
def test_login_form_refuses_a_post_without_csrf_token(requester):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "req", "password": "pw-req-123"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_every_response_has_a_request_id(client):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="abc-123")
    assert response.headers["X-Request-ID"] == "abc-123"
    assert len(client.get("/accounts/login/").headers["X-Request-ID"]) == 32
