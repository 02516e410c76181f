"""`{% may_manage_destinations user as flag %}`: whether a page shows the destinations links (the check is
journeys.permissions'; the pages enforce it again)."""

from django import template

from journeys import permissions

register = template.Library()


@register.simple_tag
def may_manage_destinations(user: object) -> bool:
    return permissions.can_manage_destinations(user)


@register.filter
def purpose_label(value: str) -> str:
    """A consent purpose in the reader's language (the code when unknown)."""
    from privacy.models import Purpose

    return Purpose(value).label if value in Purpose.values else value
