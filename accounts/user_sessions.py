"""Signed-in web sessions: an idle timeout, a lifetime, and a list a person can sign out from.

Sessions live in Django's session store (the database). Each signed-in session also has a small
UserSession row (device, address, last seen) so a person can see theirs and end one, or all but the
current one. The middleware keeps the time of the last request in the session and on that row, writing
at most once a minute (TOUCH_EVERY), so an ordinary request costs no query; a session idle for longer
than SESSION_IDLE_TIMEOUT_SECONDS, or signed in longer ago than SESSION_COOKIE_AGE, is signed out on
its next request. A password change or deactivation ends all of a person's sessions (the password form
keeps the one it was sent from, under a new key).
"""

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import roles
from accounts.login_throttle import client_address
from accounts.models import User, UserSession
from accounts.services import audit_record

log = logging.getLogger(__name__)

RECORD_KEY = "session_record"  # the UserSession's id
RECORDED_KEY_KEY = "session_record_key"  # the session key the row holds (a key changes on privilege changes)
LAST_SEEN_KEY = "last_seen"  # Unix seconds of the last request, written at most every TOUCH_EVERY
SIGNED_IN_KEY = "signed_in_at"  # Unix seconds of the sign-in
TOUCH_EVERY = 60


def _session_store() -> type[SessionBase]:
    return import_module(settings.SESSION_ENGINE).SessionStore


def _record_create(request: HttpRequest, user: User, now: int) -> UserSession:
    seen = datetime.fromtimestamp(now, tz=UTC)
    return UserSession.objects.create(
        user=user,
        session_key=request.session.session_key,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        ip_address=client_address(request),
        last_seen_at=seen,
    )


def _remember(request: HttpRequest, record_id: int, now: int) -> None:
    session = request.session
    session[RECORD_KEY] = record_id
    session[RECORDED_KEY_KEY] = session.session_key
    session[LAST_SEEN_KEY] = now


@receiver(user_logged_in)
def _session_started(sender, request: HttpRequest | None, user: User, **kwargs) -> None:  # noqa: ARG001 - signal signature
    if request is None or not hasattr(request, "session"):
        return
    now = int(time.time())
    if request.session.session_key is None:
        request.session.save()
    record = _record_create(request, user, now)
    _remember(request, record.pk, now)
    request.session[SIGNED_IN_KEY] = now


@receiver(user_logged_out)
def _session_ended(sender, request: HttpRequest | None, user: User | None, **kwargs) -> None:  # noqa: ARG001 - signal signature
    if request is None or user is None or not hasattr(request, "session"):
        return
    record_id = request.session.get(RECORD_KEY)
    if record_id:
        UserSession.objects.filter(pk=record_id, user=user).delete()


def _touch(request: HttpRequest, user: User, now: int) -> None:
    """Note the request on the session and its row (re-made when missing: a session older than the rows)."""
    session = request.session
    seen = datetime.fromtimestamp(now, tz=UTC)
    record_id = session.get(RECORD_KEY)
    updated = 0
    if record_id:
        updated = UserSession.objects.filter(pk=record_id, user=user).update(
            last_seen_at=seen, session_key=session.session_key
        )
    if not updated:
        if not _session_store()().exists(session.session_key):
            return  # revoked while this request ran
        # Several requests of one session may find its row missing at once: one makes it, the others take it.
        record_id = UserSession.objects.update_or_create(
            session_key=session.session_key,
            defaults={"last_seen_at": seen},
            create_defaults={
                "user": user,
                "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
                "ip_address": client_address(request),
                "last_seen_at": seen,
            },
        )[0].pk
    _remember(request, record_id, now)


def _ended_by_time(session: SessionBase, now: int) -> str | None:
    last_seen = session.get(LAST_SEEN_KEY)
    if last_seen is not None and now - last_seen > settings.SESSION_IDLE_TIMEOUT_SECONDS:
        return "idle"
    signed_in = session.get(SIGNED_IN_KEY)
    if signed_in is not None and now - signed_in > settings.SESSION_COOKIE_AGE:
        return "lifetime"
    return None


class SessionActivityMiddleware:
    """Signs out a session idle too long (or too old) before the view runs; notes the request after it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        now = int(time.time())
        if SESSION_KEY in session:
            ended = _ended_by_time(session, now)
            if ended is not None:
                logout(request)
                if ended == "idle":
                    hours = max(1, round(settings.SESSION_IDLE_TIMEOUT_SECONDS / 3600))
                    messages.info(
                        request,
                        ngettext(
                            "You were signed out after %(hours)s hour without activity.",
                            "You were signed out after %(hours)s hours without activity.",
                            hours,
                        )
                        % {"hours": hours},
                    )
                else:
                    messages.info(request, _("Your session ended; please sign in again."))
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and SESSION_KEY in session
            and session.session_key is not None
            and (
                now - session.get(LAST_SEEN_KEY, 0) >= TOUCH_EVERY
                or session.get(RECORDED_KEY_KEY) != session.session_key
            )
        ):
            _touch(request, user, now)
        return response


# Ending sessions -------------------------------------------------------------------------------


def _end(records: list[UserSession]) -> int:
    store = _session_store()
    for record in records:
        store().delete(record.session_key)
    return UserSession.objects.filter(pk__in=[r.pk for r in records]).delete()[0]


@transaction.atomic
def session_revoke(*, record: UserSession, by: User) -> None:
    """Sign one session out: one's own, or anyone's for a manager or admin."""
    if record.user_id != by.pk and not roles.can_edit_security_policy(by):
        raise PermissionDenied(_("You may only sign out your own sessions."))
    _end([record])
    audit_record(
        actor=by, action="session.revoke", object_type="accounts.user", object_id=record.user_id,
        changes={"session": record.pk},
    )  # fmt: skip
    log.info("session %s of user %s signed out by %s", record.pk, record.user_id, by.pk)


@transaction.atomic
def sessions_revoke_others(*, user: User, keep_session_key: str | None) -> int:
    """Sign out all of a person's sessions but the one they are using; returns how many ended."""
    others = list(UserSession.objects.filter(user=user).exclude(session_key=keep_session_key or ""))
    ended = _end(others) if others else 0
    if ended:
        audit_record(actor=user, action="session.revoke_others", obj=user, changes={"sessions": ended})
    return ended


def sessions_end_all(*, user: User) -> int:
    """End every session of a person (their password changed, or they were deactivated)."""
    records = list(UserSession.objects.filter(user=user))
    return _end(records) if records else 0


@receiver(post_save, sender=User)
def _end_sessions_on_password_change_or_deactivation(
    sender,
    instance: User,
    created: bool,
    **kwargs,  # noqa: ARG001 - signal signature
) -> None:
    # Django already refuses these sessions on their next request; ending them clears the sessions list.
    # `_password` is set only by a real change (see accounts/tokens.py).
    if not created and (getattr(instance, "_password", None) is not None or not instance.is_active):
        sessions_end_all(user=instance)


def sessions_purge() -> int:
    """Forget the rows of sessions idle past the timeout or older than their lifetime, and let the
    session store drop its expired sessions. Returns the rows deleted."""
    now = timezone.now()
    stale = UserSession.objects.filter(
        last_seen_at__lt=now - timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS)
    ) | UserSession.objects.filter(created_at__lt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE))
    records = list(stale[:5000])
    deleted = _end(records) if records else 0
    _session_store().clear_expired()
    return deleted


# Showing sessions ------------------------------------------------------------------------------

_BROWSERS = [
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/")),
    ("curl", re.compile(r"^curl/")),
]
_SYSTEMS = [
    ("Windows", re.compile(r"Windows")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("macOS", re.compile(r"Macintosh|Mac OS X")),
    ("Linux", re.compile(r"Linux|X11")),
]


def device_label(user_agent: str) -> str:
    """ "Firefox on Windows" from a user agent (the full string is shown beside it)."""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), "")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), "")
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or _("Unknown device")
