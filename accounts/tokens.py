"""Personal API tokens: issued with an expiry and a scope, stored as a hash, listed and revoked.

A token is a random key shown once; the database keeps its SHA-256 (the key has 160 random bits, so a
fast hash is enough: nothing to guess), so a copy of the database or a backup holds no usable token.
Every token of a person is revoked when their password changes or they are deactivated, whichever path
made the change (the password form, the admin, `create_user`, the shell): the User signals below.
"""

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import roles
from accounts.models import ApiToken, User
from accounts.services import audit_record

log = logging.getLogger(__name__)

# last_used_at is written at most this often per token (not on every request).
LAST_USED_PRECISION = timedelta(minutes=1)


class Reason:
    """Why a token was revoked (kept on the row and in the audit entry)."""

    BY_OWNER = "revoked"
    BY_STAFF = "revoked_by_staff"
    LOGOUT = "logout"
    PASSWORD_CHANGED = "password_changed"
    DEACTIVATED = "deactivated"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_token_issue(
    *, user: User, name: str = "", scope: str = ApiToken.Scope.WRITE, by: User | None = None
) -> ApiToken:
    """A new token for `user`, expiring after API_TOKEN_TTL_HOURS; the key is on `.key`, this once only."""
    key = secrets.token_hex(20)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip()[:100],
        scope=scope,
        key_hash=key_hash(key),
        prefix=key[:8],
        expires_at=timezone.now() + timedelta(hours=settings.API_TOKEN_TTL_HOURS),
    )
    audit_record(
        actor=by or user,
        action="api_token.create",
        obj=token,
        changes={
            "user": user.username,
            "name": token.name,
            "scope": scope,
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    log.info("api token %s issued to %s, scope %s", token.pk, user.pk, scope)
    token.key = key
    return token


def api_token_for_key(key: str) -> ApiToken | None:
    """The active (unrevoked, unexpired) token with this key, with its user; None otherwise."""
    return (
        ApiToken.objects.select_related("user")
        .filter(key_hash=key_hash(key), revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


def api_token_touch(token: ApiToken) -> None:
    """Remember that the token was used now (one UPDATE per token per minute at most)."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_PRECISION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


def _revoke(tokens: list[ApiToken], *, by: User | None, reason: str) -> int:
    now = timezone.now()
    changed = ApiToken.objects.filter(pk__in=[t.pk for t in tokens], revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by if by is not None and by.pk else None, revoke_reason=reason
    )
    for token in tokens:
        token.revoked_at, token.revoke_reason = now, reason
        audit_record(
            actor=by,
            action="api_token.revoke",
            obj=token,
            changes={"user": token.user.username, "prefix": token.prefix, "reason": reason},
        )
    if changed:
        log.info("%s api tokens revoked (%s)", changed, reason)
    return changed


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: User, reason: str = "") -> ApiToken:
    """Revoke one token: its owner may, and so may a manager or admin (anyone's)."""
    if not roles.can_revoke_api_tokens_of(by, token.user):
        raise PermissionDenied(_("You may only revoke your own tokens."))
    if token.revoked_at is None:
        reason = reason or (Reason.BY_OWNER if by.pk == token.user_id else Reason.BY_STAFF)
        _revoke([token], by=by, reason=reason)
    return token


@transaction.atomic
def api_tokens_revoke_all(*, user: User, by: User | None, reason: str = "") -> int:
    """Revoke every active token of `user`; `by` None is the system (a password change, a deactivation)."""
    if by is not None and not roles.can_revoke_api_tokens_of(by, user):
        raise PermissionDenied(_("You may only revoke your own tokens."))
    if not reason:
        reason = Reason.BY_OWNER if by is not None and by.pk == user.pk else Reason.BY_STAFF
    active = list(
        ApiToken.objects.select_related("user").filter(
            user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
    )
    return _revoke(active, by=by, reason=reason) if active else 0


@receiver(post_save, sender=User)
def _revoke_on_password_change_or_deactivation(
    sender,
    instance: User,
    created: bool,
    **kwargs,  # noqa: ARG001 - signal signature
) -> None:
    if created:
        return
    # Django keeps the new raw password on `_password` from set_password() until save() has run the
    # validators' password_changed hooks; a hasher upgrade on sign-in clears it first, so it is not
    # taken for a change.
    if getattr(instance, "_password", None) is not None:
        api_tokens_revoke_all(user=instance, by=None, reason=Reason.PASSWORD_CHANGED)
    elif not instance.is_active:
        api_tokens_revoke_all(user=instance, by=None, reason=Reason.DEACTIVATED)
