"""Single sign-on with OpenID Connect (accounts/oidc.py), against a real provider: tests/oidc_provider/
(panva's oidc-provider on Node) started on loopback, driven through the authorization-code flow with
PKCE by a requests session that follows redirects and posts the provider's sign-in and consent forms."""

import html
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.urls import reverse

from accounts import roles
from accounts.models import AuditEntry, OidcIdentity, User
from accounts.oidc import oidc_settings_check, role_from_claims, sign_on_counts_as_two_factor
from tests.accounts.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    RunningProvider,
    provider_running,
    provider_sign_in,
)

ROLE_MAP = {"mkt-staff": "requester", "mt-support": "agent", "mt-leads": "manager", "it-admins": "admin"}
TEAM_MAP = {"ecom": "E-commerce ops", "brand": "Brand marketing", "mt": "MarTech support"}
CALLBACK = reverse("accounts:oidc_callback")
SSO_LOGIN = reverse("accounts:oidc_login")


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory) -> Iterator[RunningProvider]:
    """The provider, once per test run, with this run's live server as its one client's redirect URI."""
    with provider_running(tmp_path_factory.mktemp("oidc-provider"), [live_server.url + CALLBACK]) as provider:
        yield provider


@pytest.fixture
def sso(settings, oidc_provider) -> RunningProvider:
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Corp ID"
    settings.OIDC_ISSUER = oidc_provider.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile martech"
    settings.OIDC_ROLE_CLAIM = "role"
    settings.OIDC_ROLE_MAP = ROLE_MAP
    settings.OIDC_TEAM_CLAIM = "team"
    settings.OIDC_TEAM_MAP = TEAM_MAP
    settings.OIDC_CREATE_USERS = True
    settings.OIDC_TRUST_IDP_MFA = False
    return oidc_provider


def claims(login: str, *, role: str, team: str = "ecom", **extra) -> dict:
    return {
        "email": f"{login}@corp.example",
        "email_verified": True,
        "name": login.title(),
        "role": role,
        "team": team,
        **extra,
    }


def sign_on(
    base_url: str, login: str, password: str = "idp-pw"
) -> tuple[requests.Session, requests.Response]:
    """A fresh browser: the login page's "Sign in with" link, the provider's forms, back to the portal."""
    browser = requests.Session()
    login_page = browser.get(base_url + reverse("accounts:login"))
    link = re.search(r'<a id="sso-login"[^>]* href="([^"]+)">Sign in with Corp ID</a>', login_page.text)
    assert link, "no single sign-on button on the login page"
    at_provider = browser.get(base_url + html.unescape(link.group(1)))
    assert at_provider.url.startswith("http://127.0.0.1:")
    return browser, provider_sign_in(browser, at_provider, login=login, password=password)


def signed_in(browser: requests.Session, base_url: str) -> bool:
    return browser.get(base_url + reverse("accounts:preferences"), allow_redirects=False).status_code == 200


live = pytest.mark.django_db(transaction=True)  # the live server's thread reads what the test writes


@live
def test_first_sign_on_creates_the_person_with_the_mapped_role_and_team(sso, live_server):
    # given an account at the provider whose claims say marketing staff in e-commerce
    sso.account_set("mei", password="idp-pw", claims=claims("mei", role="mkt-staff", team="ecom"))
    # when Mei signs in with it for the first time
    browser, landed = sign_on(live_server.url, "mei")
    # then she lands in the portal as a requester of E-commerce ops, linked by the provider's subject
    assert landed.status_code == 200 and landed.url.startswith(live_server.url)
    assert signed_in(browser, live_server.url)
    user = User.objects.get(oidc_identities__subject="mei", oidc_identities__issuer=sso.issuer)
    assert (roles.role_of(user), user.team.name, user.email, user.has_usable_password()) == (
        roles.REQUESTER,
        "E-commerce ops",
        "mei@corp.example",
        False,
    )
    entry = AuditEntry.objects.get(action="user.sso_create", object_id=str(user.pk))
    assert entry.changes["role"] == "requester" and entry.changes["team"] == "E-commerce ops"


@live
def test_the_next_sign_on_updates_role_and_team_from_changed_claims(sso, live_server):
    # given Max, signed on once as marketing staff
    sso.account_set("max", password="idp-pw", claims=claims("max", role="mkt-staff", team="ecom"))
    sign_on(live_server.url, "max")
    # when the provider moves him to marketing-tech support and he signs on again
    sso.account_set("max", password="idp-pw", claims=claims("max", role="mt-support", team="mt"))
    browser, _landed = sign_on(live_server.url, "max")
    # then the same person now is an agent in the support team, and the audit trail says from what to what
    assert signed_in(browser, live_server.url)
    user = User.objects.get(oidc_identities__subject="max")
    assert User.objects.filter(oidc_identities__subject="max").count() == 1
    assert (roles.role_of(user), user.team.name, user.is_staff) == (roles.AGENT, "MarTech support", False)
    entry = AuditEntry.objects.get(action="user.sso_update", object_id=str(user.pk))
    assert entry.changes["role"] == ["requester", "agent"]
    assert entry.changes["team"] == ["E-commerce ops", "MarTech support"]


@live
def test_a_role_claim_that_maps_to_no_role_is_refused_and_creates_nobody(sso, live_server):
    # given an account whose role claim is not in the map
    sso.account_set("vera", password="idp-pw", claims=claims("vera", role="contractor"))
    # when she signs on
    browser, landed = sign_on(live_server.url, "vera")
    # then she is back on the login page with the reason, signed out, and no account exists
    assert urlsplit(landed.url).path == reverse("accounts:login")
    assert "has no role in MarTech Hub" in landed.text
    assert not signed_in(browser, live_server.url)
    assert not User.objects.filter(email="vera@corp.example").exists()
    assert not OidcIdentity.objects.exists()


@live
def test_a_callback_whose_state_was_not_started_here_is_refused(sso, live_server):
    # given a sign-on walked up to the provider's redirect back to the portal
    sso.account_set("sam", password="idp-pw", claims=claims("sam", role="mkt-staff"))
    browser = requests.Session()
    at_provider = browser.get(live_server.url + SSO_LOGIN)
    response = provider_sign_in(browser, at_provider, login="sam", password="idp-pw", stop_at=CALLBACK)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] and query["code"]
    # when the callback arrives with the real code but another state
    forged = live_server.url + CALLBACK + "?" + urlencode({"code": query["code"][0], "state": "forged-state"})
    refused = browser.get(forged, allow_redirects=False)
    # then it is refused: no session, no account
    assert refused.status_code == 400
    assert "does not match one started here" in refused.text
    assert not signed_in(browser, live_server.url)
    assert not User.objects.filter(email="sam@corp.example").exists()


@live
def test_staff_signing_on_without_mfa_at_the_provider_are_asked_for_the_local_second_factor(
    sso, live_server, settings
):
    # given two-factor sign-in required of managers, and a manager whose provider sign-in used a password only
    settings.TWO_FACTOR_REQUIRED_FOR_STAFF = True
    sso.account_set("lea", password="idp-pw", claims=claims("lea", role="mt-leads", team="mt"), amr=["pwd"])
    # when she signs on
    browser, landed = sign_on(live_server.url, "lea")
    # then she is held at the portal's own two-factor set-up, as after a password
    assert urlsplit(landed.url).path == reverse("accounts:two_factor_setup")
    assert browser.get(live_server.url + reverse("tickets:queue"), allow_redirects=False).status_code == 302


@live
def test_staff_whose_provider_did_mfa_are_not_asked_again(sso, live_server, settings):
    # given the same requirement, and a manager whose provider reports a second factor in `amr`
    settings.TWO_FACTOR_REQUIRED_FOR_STAFF = True
    sso.account_set(
        "noa", password="idp-pw", claims=claims("noa", role="mt-leads", team="mt"), amr=["pwd", "mfa"]
    )
    # when she signs on
    browser, _landed = sign_on(live_server.url, "noa")
    # then the portal opens without a local code
    assert browser.get(live_server.url + reverse("tickets:queue"), allow_redirects=False).status_code == 200


@live
def test_an_existing_person_is_linked_by_verified_email_when_accounts_are_not_created(
    sso, live_server, settings, make_user
):
    # given account creation off and a person already here with the provider's verified address
    settings.OIDC_CREATE_USERS = False
    local = make_user("ines", role="requester", team="Brand marketing", email="ines@corp.example")
    sso.account_set("ines.w", password="idp-pw", claims=claims("ines", role="mt-support", team="mt"))
    # when she signs on
    browser, _landed = sign_on(live_server.url, "ines.w")
    # then it is her account, linked by subject, now with the role and team the claims give
    assert signed_in(browser, live_server.url)
    assert OidcIdentity.objects.get(subject="ines.w").user_id == local.pk
    local.refresh_from_db()
    assert (roles.role_of(local), local.team.name) == (roles.AGENT, "MarTech support")
    assert AuditEntry.objects.filter(action="user.sso_link", object_id=str(local.pk)).exists()


@live
def test_nobody_is_created_when_creation_is_off_and_nothing_matches(sso, live_server, settings):
    settings.OIDC_CREATE_USERS = False
    sso.account_set("olga", password="idp-pw", claims=claims("olga", role="mkt-staff"))
    browser, landed = sign_on(live_server.url, "olga")
    assert "There is no MarTech Hub account" in landed.text
    assert not signed_in(browser, live_server.url)
    assert not User.objects.filter(email="olga@corp.example").exists()


# Without the provider ----------------------------------------------------------------------------------


def test_with_sso_off_the_login_page_has_no_button_and_its_urls_404(client, settings):
    settings.OIDC_ENABLED = False
    page = client.get(reverse("accounts:login")).content.decode()
    assert 'id="sso-login"' not in page and "Sign in with" not in page
    assert client.get(CALLBACK, {"code": "c", "state": "s"}).status_code == 404
    assert client.get(SSO_LOGIN).status_code == 404


def test_with_sso_on_the_login_page_names_the_provider_and_passwords_still_work(client, settings, requester):
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Corp ID"
    assert "Sign in with Corp ID" in client.get(reverse("accounts:login")).content.decode()
    response = client.post(reverse("accounts:login"), {"username": "req", "password": "pw-req-123"})
    assert response.status_code == 302
    assert client.get(reverse("tickets:my_requests")).status_code == 200


def test_a_list_claim_gives_the_strongest_mapped_role(settings):
    settings.OIDC_ROLE_CLAIM = "groups"
    settings.OIDC_ROLE_MAP = ROLE_MAP
    assert role_from_claims({"groups": ["everyone", "mkt-staff", "mt-support"]}) == roles.AGENT
    assert role_from_claims({"groups": ["everyone"]}) is None
    assert role_from_claims({}) is None


def test_amr_decides_whether_the_provider_did_the_second_factor(settings):
    settings.OIDC_TRUST_IDP_MFA = False
    assert sign_on_counts_as_two_factor({"amr": ["pwd", "otp"]})
    assert not sign_on_counts_as_two_factor({"amr": ["pwd"]})
    assert not sign_on_counts_as_two_factor({})
    settings.OIDC_TRUST_IDP_MFA = True
    assert sign_on_counts_as_two_factor({})


def test_the_settings_check_names_what_is_missing_or_wrong(settings):
    settings.OIDC_ENABLED = True
    settings.OIDC_ISSUER = ""
    settings.OIDC_ROLE_MAP = {"x": "superhero"}
    messages = [error.msg for error in oidc_settings_check(None)]
    assert "OIDC_ISSUER must be set when OIDC_ENABLED is on." in messages
    assert "OIDC_ROLE_MAP names unknown roles: superhero." in messages
    settings.OIDC_ENABLED = False
    assert oidc_settings_check(None) == []


@live
def test_a_callback_cannot_be_replayed(sso, live_server):
    # given a sign-on that came back and signed Rui in
    sso.account_set("rui", password="idp-pw", claims=claims("rui", role="mkt-staff"))
    browser = requests.Session()
    at_provider = browser.get(live_server.url + SSO_LOGIN)
    back = provider_sign_in(browser, at_provider, login="rui", password="idp-pw", stop_at=CALLBACK)
    callback = back.headers["Location"]
    assert browser.get(callback, allow_redirects=False).status_code == 302
    # when the same callback (code and state) arrives again, in another browser that has a sign-on pending
    other = requests.Session()
    other.get(live_server.url + SSO_LOGIN)
    replayed = other.get(callback, allow_redirects=False)
    # then it is refused: the state was used up where it was issued, and the other session stays out
    assert replayed.status_code == 400
    assert not signed_in(other, live_server.url)


def test_an_unreachable_provider_sends_people_back_to_the_password_form(client, settings):
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Corp ID"
    settings.OIDC_ISSUER = "http://127.0.0.1:9"  # nothing listens on the discard port
    response = client.get(SSO_LOGIN)
    assert response.status_code == 502
    assert "Corp ID cannot be reached just now" in response.content.decode()
    assert 'name="password"' in response.content.decode()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"aud": "someone-else"}, "another audience"),
        ({"aud": [CLIENT_ID, "someone-else"], "azp": "someone-else"}, "another party"),
        ({"nonce": "other-nonce"}, "Nonce"),
    ],
)
def test_an_id_token_is_checked_for_issuer_audience_and_nonce(settings, change, refusal):
    # given an ID token signed with the client's secret (HS256) that differs from a good one in one claim
    import time

    import jwt
    from django.core.exceptions import SuspiciousOperation

    from accounts.oidc import OidcBackend

    settings.OIDC_ISSUER = "https://id.corp.example"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SIGN_ALGO = "HS256"
    now = int(time.time())
    good = {
        "iss": "https://id.corp.example",
        "aud": CLIENT_ID,
        "sub": "x",
        "nonce": "n",
        "iat": now,
        "exp": now + 60,
    }
    backend = OidcBackend()
    assert backend.verify_token(jwt.encode(good, CLIENT_SECRET, algorithm="HS256"), nonce="n")["sub"] == "x"
    # when it is checked, then it is refused for that claim
    with pytest.raises(SuspiciousOperation, match=refusal):
        backend.verify_token(jwt.encode({**good, **change}, CLIENT_SECRET, algorithm="HS256"), nonce="n")


@pytest.mark.django_db(transaction=True)
def test_two_first_sign_ons_of_one_person_at_once_make_one_account(settings):
    # given SSO creating accounts, and the same person's first sign-on arriving twice at the same moment
    import threading

    from django.db import connection

    from accounts.oidc import oidc_sign_in

    settings.OIDC_ROLE_CLAIM = "role"
    settings.OIDC_ROLE_MAP = ROLE_MAP
    settings.OIDC_TEAM_CLAIM = "team"
    settings.OIDC_TEAM_MAP = TEAM_MAP
    settings.OIDC_CREATE_USERS = True
    person = {"sub": "twin-1", **claims("twin", role="mkt-staff")}
    start, results, errors = threading.Barrier(2), [], []

    def sign_in() -> None:
        try:
            start.wait(timeout=30)
            results.append(oidc_sign_in(issuer="https://id.corp.example", claims=person).pk)
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then both succeed, as the same one person
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert OidcIdentity.objects.filter(subject="twin-1").count() == 1
    assert User.objects.filter(pk=results[0]).count() == 1
