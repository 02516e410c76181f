"""Who may do what with customers and tags (built on accounts.roles; reused by views and API)."""

from django.contrib.auth.models import AnonymousUser

from accounts import roles
from accounts.models import User


def can_view_customers(user: User | AnonymousUser) -> bool:
    """Every signed-in person sees customers; contact data stays masked without view_pii."""
    return user.is_authenticated


def can_view_pii(user: User | AnonymousUser) -> bool:
    return roles.can_view_pii(user)


def can_import(user: User | AnonymousUser) -> bool:
    """Loading customers and events is support work (agents, managers)."""
    return roles.is_agent(user)


def can_edit_tags(user: User | AnonymousUser) -> bool:
    """Create tags, save rule versions, preview, gray release, rollback: agents and managers."""
    return roles.is_agent(user)


def can_release(user: User | AnonymousUser, percent: int) -> bool:
    """Gray releases below 100 % are agent work; the full rollout needs a manager."""
    if percent >= 100:
        return roles.is_manager(user)
    return roles.is_agent(user)


def can_view_value_model(user: User | AnonymousUser) -> bool:
    """The value model's parameters and the lead score rules: support work (agents, managers)."""
    return roles.is_agent(user)


def can_configure_lead_score(user: User | AnonymousUser) -> bool:
    """Which events and details earn lead score points is a manager's decision."""
    return roles.is_manager(user)


def can_resolve_identifiers(user: User | AnonymousUser) -> bool:
    """Resolving identifiers may merge profiles: integration and support work (agents, managers)."""
    return roles.is_agent(user)


def can_merge_customers(user: User | AnonymousUser) -> bool:
    """Merging and unmerging profiles by hand: managers."""
    return roles.is_manager(user)
