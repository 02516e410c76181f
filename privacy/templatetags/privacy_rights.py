"""Template questions about the person's rights, answered by privacy.permissions (never by hand)."""

from django import template
from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from privacy import permissions

register = template.Library()


@register.filter
def may_file_privacy_request(user: User | AnonymousUser) -> bool:
    """`{% if request.user|may_file_privacy_request %}`: the export and erase buttons of a customer page."""
    return permissions.can_file_request(user)
