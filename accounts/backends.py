"""Permissions and role groups cached in Redis between requests.

Every page and API call asks what the person may do (`roles.is_agent`, `has_perm`, the navigation's
`role_of`): with Django's ModelBackend that is three queries per request. Here they are read from the
cache in one round trip, keyed by user and checked against a generation that any change to group
membership, a person's or a group's permissions, a group or a permission bumps (immediately and again
when the change commits, so a request racing the transaction cannot cache the old answer for long).
Entries expire after ACCESS_TTL seconds in any case; with Redis down every request reads the database.
"""

import uuid
from dataclasses import dataclass

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from accounts.models import User

ACCESS_TTL = 120
GENERATION_KEY = "auth:access:generation"


@dataclass(frozen=True)
class Access:
    permissions: frozenset[str]
    groups: frozenset[str]


def _key(user: User) -> str:
    return f"auth:access:{user.pk}:{int(user.is_superuser)}"


def _load_access(user: User) -> Access:
    """Two queries, as ModelBackend's own: the person's permissions, their groups with the groups'."""
    rows = list(
        user.groups.values_list("name", "permissions__content_type__app_label", "permissions__codename")
    )
    # A superuser holds every permission (ModelBackend answers them all as the person's own).
    permissions = set(ModelBackend().get_user_permissions(user))
    permissions.update(f"{app}.{codename}" for _name, app, codename in rows if codename)
    return Access(permissions=frozenset(permissions), groups=frozenset(name for name, _a, _c in rows))


def user_access(user: User) -> Access:
    """The person's permissions (as "app_label.codename") and group names, cached per request too."""
    cached = getattr(user, "_access_cache", None)
    if cached is not None:
        return cached
    key = _key(user)
    found = cache.get_many([GENERATION_KEY, key])
    generation = found.get(GENERATION_KEY)
    entry = found.get(key)
    if generation is not None and entry is not None and entry[0] == generation:
        access = entry[1]
    else:
        access = _load_access(user)
        if generation is None:
            generation = uuid.uuid4().hex
            cache.add(GENERATION_KEY, generation, None)
            generation = cache.get(GENERATION_KEY)
        if generation is not None:
            cache.set(key, (generation, access), ACCESS_TTL)
    user._access_cache = access
    return access


def access_changed() -> None:
    """Invalidate every cached entry: now, and once more when the current transaction commits."""

    def bump() -> None:
        cache.set(GENERATION_KEY, uuid.uuid4().hex, None)

    bump()
    transaction.on_commit(bump)


class CachedPermissionsBackend(ModelBackend):
    """ModelBackend whose permission sets come from `user_access` (same answers, fewer queries)."""

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = set(user_access(user_obj).permissions)
        return user_obj._perm_cache


@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
def _membership_changed(sender, **kwargs) -> None:  # noqa: ARG001 - signal signature
    if kwargs.get("action", "").startswith("post_"):
        access_changed()


@receiver(post_save, sender=Group)
@receiver(post_delete, sender=Group)
@receiver(post_save, sender=Permission)
@receiver(post_delete, sender=Permission)
def _group_or_permission_changed(sender, **kwargs) -> None:  # noqa: ARG001 - signal signature
    access_changed()
