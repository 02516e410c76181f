"""Sign-in attempts throttled per client address, before any password is hashed.

Axes locks a username at one address after AXES_FAILURE_LIMIT failures. That leaves an address free to
try a new username each time, and each try costs a password hash (about a second of CPU with the
production hasher). So failed sign-ins are also counted per address, in the cache (Redis), in fixed
windows of LOGIN_THROTTLE_WINDOW_SECONDS: once an address has LOGIN_THROTTLE_IP_FAILURES failures in the
current window, every sign-in from it (login page, Django admin, `POST /api/v1/auth/token/`) is answered
429 with Retry-After until the window ends, and no password is looked at.

The check is an authentication backend placed first in AUTHENTICATION_BACKENDS, so every caller of
`django.contrib.auth.authenticate` is covered; a refusal raises PermissionDenied, which stops
`authenticate` before the hashing backends run. With Redis down nothing is counted (the throttle fails
open; axes's lockout still holds).
"""

import ipaddress
import logging
import math
import time

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

log = logging.getLogger(__name__)

RETRY_AFTER_ATTRIBUTE = "login_retry_after"


class LoginThrottled(PermissionDenied):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins from this address; retry after {retry_after} s")
        self.retry_after = retry_after


def _window() -> tuple[int, int]:
    """The current window's number and the seconds left in it."""
    length = max(1, settings.LOGIN_THROTTLE_WINDOW_SECONDS)
    now = time.time()
    return int(now // length), max(1, math.ceil(length - now % length))


def _key(address: str, window: int) -> str:
    return f"login:failures:ip:{address}:{window}"


def client_address(request: HttpRequest) -> str | None:
    """The client's address, as this throttle and axes (AXES_CLIENT_IP_CALLABLE) both count it.

    Behind TRUSTED_PROXY_COUNT reverse proxies (each appending the address it saw to X-Forwarded-For),
    the client is the entry that many places from the end; entries further left are the client's own
    claims and are not believed. Without proxies, or when the header is short or malformed, the peer
    (None when even that is unknown, as in a request made up by a test's force_login).
    """
    peer = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return peer
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return peer


def retry_after_for(request: HttpRequest) -> int | None:
    """Seconds the address must wait before its next sign-in, or None when it may try now."""
    window, left = _window()
    failures = cache.get(_key(client_address(request) or "unknown", window)) or 0
    return left if failures >= settings.LOGIN_THROTTLE_IP_FAILURES else None


def failure_record(request: HttpRequest) -> int:
    """Count one failed sign-in from the request's address; returns the window's count (0: not kept)."""
    window, left = _window()
    key = _key(client_address(request) or "unknown", window)
    cache.add(key, 0, timeout=left + 5)
    try:
        return cache.incr(key)
    except ValueError:  # the key expired between add and incr, or Redis is down
        return 0


class LoginThrottleBackend:
    """First in AUTHENTICATION_BACKENDS: refuses (before any hashing) sign-ins from a throttled address.

    No `get_user`: it signs nobody in, so sessions (and the test client's force_login) pick a later backend.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **kwargs) -> None:
        if request is None:
            return None
        retry_after = retry_after_for(request)
        if retry_after is None:
            return None
        setattr(request, RETRY_AFTER_ATTRIBUTE, retry_after)
        log.warning("sign-in throttled for %s (%s s left)", client_address(request), retry_after)
        raise LoginThrottled(retry_after)


@receiver(user_login_failed)
def _count_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:  # noqa: ARG001 - signal signature
    if request is not None and not hasattr(request, RETRY_AFTER_ATTRIBUTE):
        failure_record(request)


def _lockout_seconds(request: HttpRequest) -> int:
    cool_off = get_cool_off(request)
    return int(cool_off.total_seconds()) if cool_off else 3600


def sign_in_refused_for(request: HttpRequest) -> int | None:
    """After `authenticate`: the seconds to wait when the address was throttled or axes locked the
    username at this address; None when the sign-in was looked at."""
    retry_after = getattr(request, RETRY_AFTER_ATTRIBUTE, None)
    if retry_after is None and getattr(request, "axes_locked_out", False):
        retry_after = _lockout_seconds(request)
    return retry_after


def throttled_response(request: HttpRequest, retry_after: int) -> HttpResponse:
    """The page a refused sign-in gets: 429 with Retry-After."""
    context = {"retry_after": retry_after, "retry_minutes": math.ceil(retry_after / 60)}
    response = render(request, "accounts/throttled.html", context, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: axes's username+address lockout, answered like the address throttle."""
    if original_response is not None and original_response.status_code == 429:
        return original_response  # the API answered already, in its own error shape
    response = render(request, "accounts/locked_out.html", status=429)
    response["Retry-After"] = str(_lockout_seconds(request))
    return response


class LoginThrottleMiddleware:
    """Turn a sign-in the backend refused into the 429 page (the login form would just say "invalid")."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        retry_after = getattr(request, RETRY_AFTER_ATTRIBUTE, None)
        if retry_after is None or response.status_code == 429:
            return response
        return throttled_response(request, retry_after)
