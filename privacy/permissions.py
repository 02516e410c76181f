"""Who may do what with personal data, consent and the person's requests (reused by views and API)."""

from django.contrib.auth.models import AnonymousUser

from accounts import roles
from accounts.models import User


def can_view_pii(user: User | AnonymousUser) -> bool:
    """See customers' personal values unmasked (and export them)."""
    return roles.can_view_pii(user)


def can_edit_consent(user: User | AnonymousUser) -> bool:
    """Record a customer's consent (support staff: agents and managers)."""
    return roles.is_agent(user)


def can_view_consent(user: User | AnonymousUser) -> bool:
    """Consent states carry no personal values: anyone who may see customers sees them."""
    return user.is_authenticated


def can_file_request(user: User | AnonymousUser) -> bool:
    """File a person's export or erase request: managers."""
    return roles.is_manager(user)


def can_view_requests(user: User | AnonymousUser) -> bool:
    return roles.is_manager(user)


def can_approve_request(user: User | AnonymousUser) -> bool:
    """Approve an erasure: any manager, the one who filed it included."""
    return roles.is_manager(user)


def can_download_export(user: User | AnonymousUser) -> bool:
    """Download a person's data export: a manager who may see personal data."""
    return roles.is_manager(user) and roles.can_view_pii(user)


def can_view_access_log(user: User | AnonymousUser) -> bool:
    return roles.is_manager(user)
