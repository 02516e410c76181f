from django.db.models import QuerySet

from accounts.models import Notification, Team, User


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
