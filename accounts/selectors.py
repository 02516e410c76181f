from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry, Notification, Team, User, UserSession
from accounts.roles import ADMIN, MANAGER, can_manage_api_tokens


def notifications_for_user(*, user: User) -> QuerySet[Notification]:
    """A person's own notifications, newest first."""
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-id")


def notifications_shown_to(*, user: User, limit: int = 100) -> list[Notification]:
    """A person's newest notifications, each with `shown_title` and `shown_body` in the person's language."""
    items = list(notifications_for_user(user=user)[:limit])
    for item in items:
        item.shown_title, item.shown_body = item.shown_to(user)
    return items


def support_agents() -> QuerySet[User]:
    """Active people who may work the queue (agents and managers)."""
    return (
        User.objects.filter(is_active=True)
        .filter(
            groups__permissions__codename="work_queue",
            groups__permissions__content_type__app_label="accounts",
        )
        .distinct()
        .order_by("username")
    )


def managers() -> QuerySet[User]:
    return (
        User.objects.filter(is_active=True)
        .filter(
            groups__permissions__codename="manage_support",
            groups__permissions__content_type__app_label="accounts",
        )
        .distinct()
    )


def teams() -> QuerySet[Team]:
    return Team.objects.order_by("name")


def audit_trail(*, object_type: str, object_id: str | int) -> QuerySet[AuditEntry]:
    """The audit entries of one object, oldest first, with their actors (through the object index)."""
    return (
        AuditEntry.objects.filter(object_type=object_type, object_id=str(object_id))
        .select_related("actor")
        .order_by("created_at", "id")
    )


def api_tokens_active(*, owner: User) -> QuerySet[ApiToken]:
    """A person's unrevoked, unexpired API tokens, newest first (the caller checks who may see them)."""
    return ApiToken.objects.filter(
        user=owner, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).order_by("-created_at", "-id")


def api_token_get_for_user(*, user: User, token_id: int) -> ApiToken:
    """One active token the person may revoke: their own, or anyone's for a manager or admin; else 404."""
    tokens = ApiToken.objects.select_related("user").filter(
        revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    if not can_manage_api_tokens(user):
        tokens = tokens.filter(user=user)
    return get_object_or_404(tokens, pk=token_id)


def sessions_active(*, user: User) -> QuerySet[UserSession]:
    """A person's signed-in sessions not yet idle past the timeout, most recently used first."""
    since = timezone.now() - timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS)
    return UserSession.objects.filter(user=user, last_seen_at__gte=since).order_by("-last_seen_at", "-id")


def staff_two_factor_status() -> QuerySet[User]:
    """Active managers and admins, each with `has_two_factor` (a confirmed authenticator), by username."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    enrolled = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    staff = Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name__in=[MANAGER, ADMIN])
    ids = User.objects.filter(staff, is_active=True).values("pk")
    return User.objects.filter(pk__in=ids).annotate(has_two_factor=Exists(enrolled)).order_by("username")
