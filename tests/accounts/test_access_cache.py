"""Permissions and role groups come from the cache between requests and follow every change at once."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import roles
from accounts.backends import user_access
from accounts.models import User

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    """The person as the next request loads them (no per-object caches)."""
    return User.objects.get(pk=user.pk)


def test_a_second_request_reads_permissions_and_role_without_queries(agent):
    first = fresh(agent)
    with CaptureQueriesContext(connection) as cold:
        assert roles.is_agent(first) and roles.role_of(first) == roles.AGENT
    assert len(cold.captured_queries) == 2  # own permissions; groups with their permissions

    second = fresh(agent)
    with CaptureQueriesContext(connection) as warm:
        assert roles.is_agent(second)
        assert roles.role_of(second) == roles.AGENT
        assert not roles.is_manager(second)
    assert warm.captured_queries == []


def test_joining_a_group_counts_on_the_next_request(requester):
    assert not roles.is_agent(fresh(requester))
    requester.groups.add(Group.objects.get(name=roles.AGENT))
    promoted = fresh(requester)
    assert roles.is_agent(promoted)
    assert roles.role_of(promoted) == roles.AGENT


def test_leaving_a_group_counts_on_the_next_request(manager):
    assert roles.can_view_dashboards(fresh(manager))
    manager.groups.clear()
    demoted = fresh(manager)
    assert not roles.can_view_dashboards(demoted)
    assert roles.role_of(demoted) is None


def test_a_permission_taken_from_a_group_counts_for_its_members(agent):
    assert roles.is_agent(fresh(agent))
    work_queue = Permission.objects.get(codename="work_queue")
    Group.objects.get(name=roles.AGENT).permissions.remove(work_queue)
    assert not roles.is_agent(fresh(agent))


def test_a_personal_permission_counts_on_the_next_request(requester):
    assert not roles.can_view_pii(fresh(requester))
    requester.user_permissions.add(Permission.objects.get(codename="view_pii"))
    assert roles.can_view_pii(fresh(requester))


def test_a_superuser_gets_every_permission_and_an_inactive_person_none(requester):
    requester.is_superuser = True
    requester.save()
    assert roles.is_manager(fresh(requester))
    requester.is_superuser = False
    requester.is_active = False
    requester.save()
    assert not roles.is_agent(fresh(requester))
    assert user_access(fresh(requester)).permissions == frozenset()
