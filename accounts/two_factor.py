"""Two-factor sign-in: an authenticator app (TOTP) with single-use recovery codes, on django-otp.

After the password, a person with a confirmed authenticator is signed in but not verified: the middleware
below lets them reach nothing but the code page (and sign out) until a code from the app, or a recovery
code, verifies the session. Managers and admins can be made to use it (the security page's switch, or
TWO_FACTOR_REQUIRED_FOR_STAFF): one of them without an authenticator is sent to set one up before
anything else. The API's token endpoint asks for the current code too (accounts/api.py).

The TOTP secret is stored as django-otp keeps it (it must be read to check a code); recovery codes are
stored as SHA-256 only. Wrong codes slow the device down exponentially (django-otp's throttling), and a
code once accepted cannot be used again (the device remembers the last time step it accepted).
"""

import hashlib
import logging
import math
import secrets
from base64 import b32encode
from collections.abc import Callable
from dataclasses import dataclass

import segno
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import roles
from accounts.models import RecoveryCodeDevice, SecurityPolicy, User
from accounts.services import audit_record, notify

log = logging.getLogger(__name__)

# Whether the signed-in person has an authenticator, remembered in the session at sign-in (so the
# middleware asks the database once per session, not on every request).
SESSION_ENROLLED_KEY = "two_factor_enrolled"
SESSION_SSO_TWO_FACTOR_KEY = (
    "two_factor_by_sso"  # set by a single sign-on whose provider did the second factor
)
SESSION_POLICY_KEY = "two_factor_policy"  # the staff requirement as it was at sign-in (when the cache misses)
POLICY_CACHE_KEY = "security:two_factor_for_staff"
RECOVERY_CODE_COUNT = 10
# 31 characters without look-alikes (no 0/o, 1/l/i): 16 of them carry about 79 random bits.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 16
RECOVERY_CODES_LOW = 3
GATE_VERIFY, GATE_ENROL = "verify", "enrol"


class TwoFactorError(ValueError):
    """A code that was not accepted; `retry_after` is set when the device is slowed down."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Policy ----------------------------------------------------------------------------------------


def security_policy_get() -> SecurityPolicy:
    """The one policy row (created with the defaults when missing)."""
    policy, _created = SecurityPolicy.objects.get_or_create(pk=1)
    return policy


def policy_requires_two_factor_for_staff(*, fallback: bool | None = None) -> bool:
    """The deployment's setting or the manager's switch. The switch is kept in the cache (Redis, written
    when it changes); on a miss, `fallback` (what the session saw at sign-in) answers without a query,
    else the database does and the cache is filled again."""
    if settings.TWO_FACTOR_REQUIRED_FOR_STAFF:
        return True
    cached = cache.get(POLICY_CACHE_KEY)
    if cached is not None:
        return bool(cached)
    if fallback is not None:
        return fallback
    required = SecurityPolicy.objects.filter(pk=1, two_factor_for_staff=True).exists()
    cache.set(POLICY_CACHE_KEY, int(required), None)
    return required


def two_factor_required_for(user: User, *, fallback: bool | None = None) -> bool:
    """Whether this person must use two-factor sign-in (a manager or admin, when the policy says so)."""
    return roles.two_factor_may_be_required_of(user) and policy_requires_two_factor_for_staff(
        fallback=fallback
    )


@transaction.atomic
def security_policy_update(*, by: User, two_factor_for_staff: bool) -> SecurityPolicy:
    """Switch the two-factor requirement for managers and admins (managers and admins may)."""
    if not roles.can_edit_security_policy(by):
        raise PermissionDenied(_("Only managers and admins may change the security policy."))
    policy = SecurityPolicy.objects.select_for_update().get_or_create(pk=1)[0]
    old = policy.two_factor_for_staff
    policy.two_factor_for_staff = two_factor_for_staff
    policy.updated_by = by
    policy.save()
    if old != two_factor_for_staff:
        audit_record(
            actor=by,
            action="security_policy.update",
            obj=policy,
            changes={"two_factor_for_staff": [old, two_factor_for_staff]},
        )
    cache.delete(POLICY_CACHE_KEY)  # (until the commit, a miss reads the database's committed answer)
    transaction.on_commit(lambda: cache.set(POLICY_CACHE_KEY, int(two_factor_for_staff), None))
    return policy


# Devices ---------------------------------------------------------------------------------------


def totp_device_of(user: User) -> TOTPDevice | None:
    """The person's confirmed authenticator, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()


def two_factor_enabled(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def recovery_codes_left(user: User) -> int:
    device = RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()
    return len(device.code_hashes) if device is not None else 0


def recovery_code_hash(code: str) -> str:
    """The stored form of a recovery code: spaces, dashes and case do not matter when it is typed."""
    normalised = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normalised.encode()).hexdigest()


def _recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4))


def _recovery_codes_replace(user: User) -> list[str]:
    codes = [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCodeDevice.objects.filter(user=user).delete()
    RecoveryCodeDevice.objects.create(
        user=user,
        name="recovery codes",
        confirmed=True,
        code_hashes=[recovery_code_hash(code) for code in codes],
    )
    return codes


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """An unconfirmed authenticator for the set-up page: the one already started, else a new secret."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
    return device


def totp_secret_text(device: TOTPDevice) -> str:
    """The secret as an authenticator app asks for it when typed by hand (base32, in groups of four)."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_qr_svg(device: TOTPDevice) -> SafeString:
    """The otpauth:// link as an inline SVG QR code, made here (no image service sees the secret)."""
    return mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=5, border=2, dark="#212529"))  # noqa: S308 - segno's own markup


def _normalised_code(code: str) -> str:
    return "".join(code.split())


def _verify_on(device: TOTPDevice | RecoveryCodeDevice, code: str) -> bool:
    allowed, info = device.verify_is_allowed()
    if not allowed:
        locked_until = (info or {}).get("locked_until")
        wait = math.ceil((locked_until - timezone.now()).total_seconds()) if locked_until else 1
        raise TwoFactorError(
            _("Too many wrong codes: wait %(seconds)s seconds and try again.") % {"seconds": max(wait, 1)},
            retry_after=max(wait, 1),
        )
    return device.verify_token(code)


def totp_enrolment_confirm(*, user: User, device: TOTPDevice, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the authenticator with a code it shows; it replaces any earlier one, and a fresh set of
    recovery codes is made. Returns the device and the codes (shown this once). Raises TwoFactorError on
    a wrong code."""
    # (the refusal is raised after the transaction, whose commit keeps the device's count of wrong codes)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user, confirmed=False)
        if not _verify_on(device, _normalised_code(code)):
            device = None
        else:
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _recovery_codes_replace(user)
            audit_record(actor=user, action="two_factor.enable", obj=user, changes={"device": "totp"})
    if device is None:
        raise TwoFactorError(_("That code is not right. Check the time on your phone and try again."))
    log.info("two-factor sign-in enabled for user %s", user.pk)
    return device, codes


@dataclass(frozen=True)
class Verified:
    device: TOTPDevice | RecoveryCodeDevice
    recovery_code_used: bool
    recovery_codes_left: int


def two_factor_check(*, user: User, code: str, allow_recovery: bool = True) -> Verified:
    """Check a code from the authenticator (six digits) or, when allowed, a recovery code (used up).
    Raises TwoFactorError when it is not accepted or the device is slowed down by wrong codes."""
    # (raised after the transaction, whose commit keeps the device's count of wrong codes)
    verified = _two_factor_check(user, _normalised_code(code), allow_recovery)
    if verified is None:
        raise TwoFactorError(_("That code is not right."))
    return verified


@transaction.atomic
def _two_factor_check(user: User, code: str, allow_recovery: bool) -> Verified | None:
    if code.isascii() and code.isdigit():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is not None and _verify_on(device, code):
            return Verified(device, False, recovery_codes_left(user))
    elif allow_recovery:
        device = RecoveryCodeDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is not None and _verify_on(device, code):
            left = len(device.code_hashes)
            audit_record(actor=user, action="two_factor.recovery_code_used", obj=user, changes={"left": left})
            notify(
                recipients=[user],
                kind="two_factor.recovery_code_used",
                params={"left": left},
                url=reverse("accounts:two_factor"),
            )
            return Verified(device, True, left)
    return None


@transaction.atomic
def recovery_codes_regenerate(*, user: User) -> list[str]:
    """A new set of recovery codes (the old ones stop working); shown this once."""
    if not two_factor_enabled(user):
        raise TwoFactorError(_("Set up an authenticator app first."))
    codes = _recovery_codes_replace(user)
    audit_record(actor=user, action="two_factor.recovery_codes_regenerate", obj=user, changes={})
    return codes


@transaction.atomic
def two_factor_disable(*, user: User, by: User) -> int:
    """Remove a person's authenticator and recovery codes: they themselves (the view checks password
    and code), or a manager or admin resetting someone who lost their phone. Returns devices removed."""
    if not roles.can_reset_two_factor_of(by, user):
        raise PermissionDenied(_("You may not reset this person's two-factor sign-in."))
    removed = TOTPDevice.objects.filter(user=user).delete()[0]
    removed += RecoveryCodeDevice.objects.filter(user=user).delete()[0]
    reason = "self" if by.pk == user.pk else "reset_by_staff"
    audit_record(actor=by, action="two_factor.disable", obj=user, changes={"reason": reason})
    notify(
        recipients=[user],
        kind="two_factor.disable",
        url=reverse("accounts:two_factor"),
    )
    log.info("two-factor sign-in removed for user %s by %s", user.pk, by.pk)
    return removed


# The session ------------------------------------------------------------------------------------


def session_verified(request: HttpRequest, device: TOTPDevice | RecoveryCodeDevice) -> None:
    """Mark the session verified by this device, under a new session key (the privilege changed)."""
    otp_login(request, device)
    request.session[SESSION_ENROLLED_KEY] = True
    request.session.cycle_key()


@receiver(user_logged_in)
def _remember_enrolment(sender, request: HttpRequest | None, user: User, **kwargs) -> None:  # noqa: ARG001 - signal signature
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_ENROLLED_KEY] = two_factor_enabled(user)
        request.session[SESSION_POLICY_KEY] = policy_requires_two_factor_for_staff()


def two_factor_gate(request: HttpRequest) -> str | None:
    """What stands between a signed-in person and the portal: "verify" (a code is due), "enrol" (they
    must set up an authenticator first) or None."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.is_verified():
        return None
    if request.session.get(
        SESSION_SSO_TWO_FACTOR_KEY
    ):  # the single sign-on provider did it (accounts/oidc.py)
        return None
    enrolled = request.session.get(SESSION_ENROLLED_KEY)
    if enrolled is None:  # a session from before two-factor sign-in existed
        enrolled = request.session[SESSION_ENROLLED_KEY] = two_factor_enabled(user)
    if enrolled:
        return GATE_VERIFY
    if two_factor_required_for(user, fallback=request.session.get(SESSION_POLICY_KEY)):
        return GATE_ENROL
    return None


def _open_paths(gate: str) -> set[str]:
    page = "accounts:two_factor_verify" if gate == GATE_VERIFY else "accounts:two_factor_setup"
    return {reverse(page), reverse("accounts:logout"), reverse("accounts:set_language")}


class TwoFactorMiddleware:
    """After django-otp's OTPMiddleware: a session that still owes a code (or an authenticator) reaches
    only the page that takes it; pages redirect there, the API answers 403."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        gate = two_factor_gate(request)
        request.two_factor_gate = gate
        if gate is None or request.path_info in _open_paths(gate):
            return self.get_response(request)
        if request.path_info.startswith("/api/"):
            detail = (
                _("Enter your two-factor code on the web first.")
                if gate == GATE_VERIFY
                else _("Set up two-factor sign-in on the web first.")
            )
            return JsonResponse({"detail": detail}, status=403)
        page = reverse("accounts:two_factor_verify" if gate == GATE_VERIFY else "accounts:two_factor_setup")
        if request.method == "GET":
            page += "?" + urlencode({"next": request.get_full_path()})
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = page
            return response
        return redirect(page)
