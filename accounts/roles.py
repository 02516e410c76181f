"""Roles and the predicates every app uses to ask what a person may do. One place, reused everywhere."""

from django.contrib.auth.models import AnonymousUser

from accounts.backends import user_access
from accounts.models import User

REQUESTER, AGENT, MANAGER, ADMIN = "requester", "agent", "manager", "admin"
ROLES = (REQUESTER, AGENT, MANAGER, ADMIN)

# The permissions (all on accounts.User) each role's group carries; admin also gets Django admin rights.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    REQUESTER: [],
    AGENT: ["work_queue"],
    MANAGER: ["work_queue", "manage_support", "view_dashboards"],
    ADMIN: [],
}
ADMIN_MODEL_PERMISSIONS = [
    ("accounts", "user"),
    ("accounts", "team"),
    ("auth", "group"),
    # identity resolution's settings (issue 19): the kinds of identifier, their merge rules, junk values
    ("crm_tags", "identifierkind"),
    ("crm_tags", "mergerule"),
    ("crm_tags", "blockedidentifier"),
    # the default sign-off list of solution plans per team and request type (issue 21)
    ("tickets", "signoffdefault"),
]


def role_of(user: User | AnonymousUser) -> str | None:
    """The strongest role a person holds, or None."""
    if not user.is_authenticated:
        return None
    names = user_access(user).groups
    for role in (MANAGER, AGENT, ADMIN, REQUESTER):
        if role in names:
            return role
    return None


def is_agent(user: User | AnonymousUser) -> bool:
    """Support staff (agents and managers) who work the queue."""
    return user.is_authenticated and user.has_perm("accounts.work_queue")


def is_manager(user: User | AnonymousUser) -> bool:
    return user.is_authenticated and user.has_perm("accounts.manage_support")


def can_view_pii(user: User | AnonymousUser) -> bool:
    return user.is_authenticated and user.has_perm("accounts.view_pii")


def can_view_dashboards(user: User | AnonymousUser) -> bool:
    return user.is_authenticated and user.has_perm("accounts.view_dashboards")


def can_use_admin(user: User | AnonymousUser) -> bool:
    return user.is_authenticated and user.is_active and user.is_staff


def can_manage_api_tokens(user: User | AnonymousUser) -> bool:
    """Managers and admins may list and revoke anyone's API tokens."""
    return is_manager(user) or can_use_admin(user)


def can_revoke_api_tokens_of(user: User | AnonymousUser, owner: User) -> bool:
    return user.is_authenticated and (user.pk == owner.pk or can_manage_api_tokens(user))


def two_factor_may_be_required_of(user: User | AnonymousUser) -> bool:
    """Managers and admins: the roles the security policy can make use two-factor sign-in."""
    return user.is_authenticated and (is_manager(user) or user.is_staff or role_of(user) == ADMIN)


def can_edit_security_policy(user: User | AnonymousUser) -> bool:
    """Managers and admins set the sign-in rules (the two-factor requirement)."""
    return is_manager(user) or can_use_admin(user)


def can_reset_two_factor_of(user: User | AnonymousUser, owner: User) -> bool:
    """One's own two-factor sign-in; anyone's for a manager or admin (a person who lost their phone)."""
    return user.is_authenticated and (user.pk == owner.pk or can_edit_security_policy(user))
