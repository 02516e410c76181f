from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry, Notification, Team, User
from accounts.roles import can_manage_api_tokens


def notifications_for_user(*, user: User) -> QuerySet[Notification]:
    """A person's own notifications, newest first."""
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-id")


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
