"""Single sign-on with OpenID Connect, on mozilla-django-oidc (the authorization-code flow with PKCE).

Off unless OIDC_ENABLED (config/settings.py); password sign-in works either way. The provider's endpoints
come from its discovery document (`<OIDC_ISSUER>/.well-known/openid-configuration`, cached for an hour).

At each sign-on the ID token is checked (signature against the provider's keys, nonce, issuer, audience,
expiry), then the claims decide who the person is here and what they may do:
- the person is found by the provider's `sub` (an OidcIdentity row), else, at the first sign-on, by a
  verified e-mail address matching exactly one person here, else created when OIDC_CREATE_USERS;
- OIDC_ROLE_CLAIM, through OIDC_ROLE_MAP, gives the role: a value that maps to no role refuses the
  sign-on (nothing is created or changed); with OIDC_TEAM_CLAIM set, OIDC_TEAM_MAP gives the team (an
  unmapped or missing team clears it, so a person moved elsewhere keeps no old team's access);
- role and team are written again at every sign-on, and every change is in the audit trail.

Two-factor sign-in (accounts/two_factor.py): a sign-on whose ID token's `amr` names one of
OIDC_MFA_AMR_VALUES, or any sign-on with OIDC_TRUST_IDP_MFA, leaves the second factor to the provider;
otherwise the session is asked for the local code exactly as after a password.
"""

import logging
import re
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.core.checks import Error, register
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import connection, transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts import roles
from accounts.models import OidcIdentity, Team, User
from accounts.services import audit_record, role_groups_ensure
from accounts.two_factor import SESSION_SSO_TWO_FACTOR_KEY

log = logging.getLogger(__name__)

DISCOVERY_CACHE_SECONDS = 3600
# When a claim lists several values that map to different roles, the first of these wins (as role_of).
ROLE_PRECEDENCE = (roles.MANAGER, roles.AGENT, roles.ADMIN, roles.REQUESTER)
USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


class ProviderUnavailable(Exception):
    """The provider's discovery document could not be read or does not describe the configured issuer."""


class SignOnRefused(PermissionDenied):
    """A sign-on this portal does not accept; the message is shown to the person."""


# The provider ------------------------------------------------------------------------------------


def oidc_enabled() -> bool:
    return bool(settings.OIDC_ENABLED)


def provider_name() -> str:
    """The provider as the login page names it ("Sign in with ...")."""
    return settings.OIDC_PROVIDER_NAME or _("single sign-on")


def provider_metadata() -> dict[str, Any]:
    """The provider's discovery document (cached); its issuer must be the configured one exactly."""
    issuer = settings.OIDC_ISSUER.rstrip("/")
    key = f"oidc:discovery:{issuer}"
    metadata = cache.get(key)
    if metadata is not None:
        return metadata
    try:
        response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        metadata = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"discovery document of {issuer} unreadable: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("issuer", "").rstrip("/") != issuer:
        raise ProviderUnavailable(f"discovery document of {issuer} names another issuer")
    missing = {"authorization_endpoint", "token_endpoint", "jwks_uri"} - metadata.keys()
    if missing:
        raise ProviderUnavailable(f"discovery document of {issuer} lacks {', '.join(sorted(missing))}")
    cache.set(key, metadata, DISCOVERY_CACHE_SECONDS)
    return metadata


# Claims ------------------------------------------------------------------------------------------


def _claim_values(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name) if name else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def role_from_claims(claims: dict[str, Any]) -> str | None:
    """The portal role OIDC_ROLE_MAP gives the role claim's value(s), or None."""
    mapped = {settings.OIDC_ROLE_MAP.get(v) for v in _claim_values(claims, settings.OIDC_ROLE_CLAIM)}
    return next((role for role in ROLE_PRECEDENCE if role in mapped), None)


def team_name_from_claims(claims: dict[str, Any]) -> str | None:
    """The team name OIDC_TEAM_MAP gives the team claim's (first mapped) value, or None."""
    for value in _claim_values(claims, settings.OIDC_TEAM_CLAIM):
        name = settings.OIDC_TEAM_MAP.get(value)
        if isinstance(name, str) and name:
            return name
    return None


def sign_on_counts_as_two_factor(id_token_claims: dict[str, Any]) -> bool:
    """Whether the provider did the second factor: it is trusted to, or the ID token's `amr` says so."""
    if settings.OIDC_TRUST_IDP_MFA:
        return True
    amr = id_token_claims.get("amr") or []
    methods = {amr} if isinstance(amr, str) else {m for m in amr if isinstance(m, str)}
    return bool(methods & set(settings.OIDC_MFA_AMR_VALUES))


# The sign-on (a write) ---------------------------------------------------------------------------


def _username_for(claims: dict[str, Any]) -> str:
    base = claims.get("preferred_username") or (claims.get("email") or "").split("@")[0] or "sso"
    base = USERNAME_UNSAFE.sub("-", str(base))[:140] or "sso"
    username, n = base, 1
    while User.objects.filter(username__iexact=username).exists():
        n += 1
        username = f"{base}-{n}"
    return username


def _user_for_identity(issuer: str, subject: str, claims: dict[str, Any]) -> tuple[User | None, str]:
    """The person this identity signs in as, and how they were found ("identity", "email" or "")."""
    identity = OidcIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is not None:
        return identity.user, "identity"
    email = claims.get("email")
    if email and claims.get("email_verified") is True:
        matches = list(User.objects.filter(email__iexact=email, oidc_identities__isnull=True)[:2])
        if len(matches) == 1:
            return matches[0], "email"
    return None, ""


@transaction.atomic
def oidc_sign_in(*, issuer: str, claims: dict[str, Any]) -> User:
    """Find (or create) the person an ID token and userinfo claims name, and set role and team from the
    claims. Raises SignOnRefused (nothing changed) when the role claim maps to no role, no account matches
    and none may be created, or the account is deactivated."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise SuspiciousOperation("ID token without sub")
    with connection.cursor() as cursor:
        # Two first sign-ons of one person at once: the second waits here, then finds what the first made.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"oidc:{issuer}:{subject}"])
    role = role_from_claims(claims)
    if role is None:
        log.warning(
            "sign-on of %s refused: role claim %r maps to no role",
            subject,
            claims.get(settings.OIDC_ROLE_CLAIM),
        )
        raise SignOnRefused(
            _(
                "Your single sign-on account has no role in MarTech Hub. Ask an administrator to give you access."
            )
        )
    user, found_by = _user_for_identity(issuer, subject, claims)
    if user is None and not settings.OIDC_CREATE_USERS:
        log.warning("sign-on of %s refused: no account matches and creating accounts is off", subject)
        raise SignOnRefused(
            _(
                "There is no MarTech Hub account for your single sign-on account. Ask an administrator to create one."
            )
        )
    if user is not None and not user.is_active:
        raise SignOnRefused(_("Your MarTech Hub account is deactivated."))

    user = User.objects.select_for_update().get(pk=user.pk) if user is not None else None
    created = user is None
    if created:
        user = User(username=_username_for(claims))
        user.set_unusable_password()
    held = set() if created else set(user.groups.filter(name__in=roles.ROLES).values_list("name", flat=True))
    old_role = next((r for r in ROLE_PRECEDENCE if r in held), None)
    old_team = None if created else (user.team.name if user.team_id else None)
    if settings.OIDC_TEAM_CLAIM:
        team_name = team_name_from_claims(claims)
        user.team = Team.objects.get_or_create(name=team_name)[0] if team_name else None
    if claims.get("email") and claims.get("email_verified") is True:
        user.email = claims["email"]
    if claims.get("name"):
        user.display_name = str(claims["name"])[:100]
    user.is_staff = role == roles.ADMIN
    user.save()
    if held != {role}:  # exactly one role group; other groups stay
        groups = role_groups_ensure()
        user.groups.remove(*[groups[name] for name in held - {role}])
        user.groups.add(groups[role])
    OidcIdentity.objects.update_or_create(
        issuer=issuer, subject=subject, defaults={"user": user, "last_sign_in_at": timezone.now()}
    )

    new_team = user.team.name if user.team_id else None
    sso = {"issuer": issuer, "subject": subject}
    if created:
        audit_record(
            actor=None, action="user.sso_create", obj=user, changes={"role": role, "team": new_team, **sso}
        )
        log.info("user %s created at sign-on with role %s", user.username, role)
        return user
    if found_by == "email":
        audit_record(actor=None, action="user.sso_link", obj=user, changes={"email": user.email, **sso})
    changes = {}
    if old_role != role:
        changes["role"] = [old_role, role]
    if old_team != new_team:
        changes["team"] = [old_team, new_team]
    if changes:
        audit_record(actor=None, action="user.sso_update", obj=user, changes={**changes, **sso})
        log.info("user %s updated at sign-on: %s", user.username, ", ".join(changes))
    return user


@receiver(user_logged_in)
def _forget_sso_two_factor(sender, request: HttpRequest | None, user: User, **kwargs) -> None:  # noqa: ARG001 - signal signature
    # Every sign-in starts without it; the sign-on callback sets it again after its own login.
    if request is not None and hasattr(request, "session"):
        request.session.pop(SESSION_SSO_TWO_FACTOR_KEY, None)


# mozilla-django-oidc's backend --------------------------------------------------------------------


class OidcBackend(OIDCAuthenticationBackend):
    """Signs in from the callback only (it answers nothing else). Permissions stay with
    CachedPermissionsBackend: this one grants none, so it adds no query to a permission check."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ARG002 - settings are read here, endpoints later
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.OIDC_OP_TOKEN_ENDPOINT = self.OIDC_OP_USER_ENDPOINT = self.OIDC_OP_JWKS_ENDPOINT = None
        self.issuer = settings.OIDC_ISSUER.rstrip("/")

    def authenticate(self, request: HttpRequest | None, **kwargs) -> User | None:
        if request is None or not oidc_enabled() or "nonce" not in kwargs or "username" in kwargs:
            return None
        metadata = provider_metadata()
        self.issuer = metadata["issuer"]
        self.OIDC_OP_TOKEN_ENDPOINT = metadata["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = metadata.get("userinfo_endpoint")
        self.OIDC_OP_JWKS_ENDPOINT = metadata["jwks_uri"]
        return super().authenticate(request, **kwargs)

    def verify_token(self, token: str, **kwargs) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)  # signature, alg, expiry, nonce
        if "nonce" in kwargs:  # the ID token: the library leaves its issuer and audience to us
            audience = payload.get("aud")
            audiences = [audience] if isinstance(audience, str) else list(audience or [])
            if payload.get("iss", "").rstrip("/") != self.issuer.rstrip("/"):
                raise SuspiciousOperation("ID token from another issuer")
            if self.OIDC_RP_CLIENT_ID not in audiences:
                raise SuspiciousOperation("ID token for another audience")
            if len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
                raise SuspiciousOperation("ID token authorized for another party")
            if "exp" not in payload:
                raise SuspiciousOperation("ID token without expiry")
        return payload

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User:
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            userinfo = self.get_userinfo(access_token, id_token, payload)
            if userinfo.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("userinfo names another subject than the ID token")
            claims.update(userinfo)
        try:
            user = oidc_sign_in(issuer=self.issuer, claims=claims)
        except SignOnRefused as exc:
            self.request.oidc_refusal = str(exc)  # shown by the callback view
            raise
        self.request.oidc_two_factor = sign_on_counts_as_two_factor(payload)
        return user

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:  # noqa: ARG002
        return set()

    def get_user_permissions(self, user_obj, obj=None) -> set[str]:  # noqa: ARG002
        return set()

    def get_group_permissions(self, user_obj, obj=None) -> set[str]:  # noqa: ARG002
        return set()


# Configuration check -----------------------------------------------------------------------------


@register()
def oidc_settings_check(app_configs, **kwargs) -> list[Error]:  # noqa: ARG001 - check signature
    """With single sign-on on, the issuer, the client and a role map naming real roles must be set."""
    if not oidc_enabled():
        return []
    required = {  # environment variable: setting
        "OIDC_ISSUER": "OIDC_ISSUER",
        "OIDC_CLIENT_ID": "OIDC_RP_CLIENT_ID",
        "OIDC_CLIENT_SECRET": "OIDC_RP_CLIENT_SECRET",
        "OIDC_ROLE_CLAIM": "OIDC_ROLE_CLAIM",
    }
    errors = [
        Error(f"{variable} must be set when OIDC_ENABLED is on.", id="accounts.E101")
        for variable, name in required.items()
        if not getattr(settings, name)
    ]
    if not isinstance(settings.OIDC_ROLE_MAP, dict) or not settings.OIDC_ROLE_MAP:
        errors.append(Error("OIDC_ROLE_MAP must map claim values to roles.", id="accounts.E102"))
    else:
        unknown = sorted({str(r) for r in settings.OIDC_ROLE_MAP.values()} - set(roles.ROLES))
        if unknown:
            errors.append(
                Error(
                    f"OIDC_ROLE_MAP names unknown roles: {', '.join(unknown)}.",
                    hint=f"Roles: {', '.join(roles.ROLES)}.",
                    id="accounts.E103",
                )
            )
    if not isinstance(settings.OIDC_TEAM_MAP, dict):
        errors.append(Error("OIDC_TEAM_MAP must be a JSON object.", id="accounts.E104"))
    return errors
