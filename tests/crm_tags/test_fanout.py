"""Tag builds fanned out over customer-id ranges (crm_tags/fanout.py): the same membership as the single
statement for any rule, data, gray share and number of ranges; a failed or dead range fails the build
visibly and leaves the previous membership as it was; small tags stay one statement."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_tags import fanout, services, tasks
from crm_tags.models import Customer, Tag, TagBuild, TagBuildPart, TagMembership, TagVersion
from tests.crm_tags import factories
from tests.crm_tags.test_rules_property import BASE, rules, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule_tags(db):
    return {slug: Tag.objects.create(slug=slug, name=slug) for slug in ("t1", "t2")}


def _members(tag) -> list[int]:
    return sorted(TagMembership.objects.filter(tag=tag).values_list("customer_id", flat=True))


def _matches() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_tags_buildmatch")
        return cursor.fetchone()[0]


def _queued(tag, version, percent: int = 100, as_of=BASE) -> TagBuild:
    return TagBuild.objects.create(tag=tag, version=version, rollout_percent=percent, as_of=as_of)


@given(low=st.integers(-5, 1000), span=st.integers(0, 5000), parts=st.integers(1, 9))
def test_the_ranges_cover_every_id_once(low, span, parts):
    found = fanout.ranges(low, low + span, parts)
    covered = [i for lo, hi in found for i in range(lo, hi)]
    assert covered == list(range(low, low + span + 1))
    assert len(found) <= parts


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=world(), rule=rules(), parts=st.integers(1, 5), percent=st.sampled_from([100, 100, 50, 10]))
def test_a_fanned_out_build_gives_the_single_statements_membership(
    crm_reset, rule_tags, data, rule, parts, percent, django_capture_on_commit_callbacks
):
    # given random customers with events and memberships of t2, and a rule over them
    crm_reset()
    TagVersion.objects.all().delete()
    t1, t2 = rule_tags["t1"], rule_tags["t2"]
    version = TagVersion.objects.create(tag=t1, number=1, definition=rule, depends_on=[])
    rows = []
    for spec in data["customers"]:
        fields = {
            k: spec[k]
            for k in ("external_id", "name", "city", "gender", "birth_date", "signup_at", "attributes")
        }
        person = Customer.objects.create(**fields)
        rows += [(person, kind, at, amount) for kind, at, amount in spec["events"]]
        if "t2" in spec["tags"]:
            TagMembership.objects.create(tag=t2, customer=person, since=BASE)
    factories.events(rows)
    # when it is built in one statement, then (membership emptied) over `parts` customer-id ranges
    single = services.tag_build_run(
        build=_queued(t1, version, percent, data["as_of"]), queue_dependents=False
    )
    expected = _members(t1)
    TagMembership.objects.filter(tag=t1).delete()
    with (
        override_settings(TAG_FANOUT_MIN_CUSTOMERS=0, TAG_FANOUT_PARTS=parts),
        django_capture_on_commit_callbacks(execute=True),
    ):
        build = _queued(t1, version, percent, data["as_of"])
        tasks.run_tag_build(build.pk)
    build.refresh_from_db()
    # then both give the same members, and the ranges' scratch rows are gone
    assert single.status == build.status == TagBuild.Status.DONE, build.error
    assert _members(t1) == expected
    assert build.members == len(expected) and build.entered == len(expected)
    assert 1 <= TagBuildPart.objects.filter(build=build).count() <= parts
    assert _matches() == 0


def _world_of_three(rule_tags) -> tuple:
    t1 = rule_tags["t1"]
    people = [factories.customer(city="Shanghai") for _ in range(3)] + [factories.customer(city="Beijing")]
    version = TagVersion.objects.create(
        tag=t1, number=1, definition={"attr": "city", "op": "=", "value": "Shanghai"}, depends_on=[]
    )
    return t1, people, version


def test_a_failing_range_fails_the_build_and_keeps_the_previous_membership(
    rule_tags, settings, second_range_fails, django_capture_on_commit_callbacks
):
    # given a tag whose members are the Beijing customer, and a fanned-out build one of whose ranges fails
    t1, people, version = _world_of_three(rule_tags)
    TagMembership.objects.create(tag=t1, customer=people[3], since=BASE)
    settings.TAG_FANOUT_MIN_CUSTOMERS, settings.TAG_FANOUT_PARTS = 0, 3
    with django_capture_on_commit_callbacks(execute=True):
        build = _queued(t1, version)
        tasks.run_tag_build(build.pk)
    build.refresh_from_db()
    # then the build failed with the reason shown, the old membership stands, nothing is left over,
    # and the remaining range, delivered after, does nothing
    assert build.status == TagBuild.Status.FAILED
    assert "range worker lost its connection" in build.error
    assert _members(t1) == [people[3].pk]
    assert _matches() == 0
    assert len(second_range_fails) == 2  # the third range saw its build over
    assert fanout.run_part(TagBuildPart.objects.filter(build=build).order_by("number").last().pk) == 0


def test_a_range_whose_worker_died_fails_the_build_at_the_sweep(rule_tags, settings):
    # given a fanned-out build with one range done and one marked running by a worker that died a
    # minute ago (nobody holds its lock)
    t1, people, version = _world_of_three(rule_tags)
    TagMembership.objects.create(tag=t1, customer=people[3], since=BASE)
    build = _queued(t1, version)
    TagBuild.objects.filter(pk=build.pk).update(status=TagBuild.Status.RUNNING, started_at=timezone.now())
    done = TagBuildPart.objects.create(build=build, number=0, low=0, high=people[1].pk, status="done")
    TagBuildPart.objects.create(
        build=build,
        number=1,
        low=people[1].pk,
        high=people[3].pk + 1,
        status="running",
        started_at=timezone.now() - timedelta(minutes=1),
    )
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO crm_tags_buildmatch VALUES (%s, %s)", [build.pk, people[0].pk])
    # when the orphan sweep runs (the build itself is not judged by its own lock: it holds none)
    assert tasks.fail_orphaned_builds() == 1
    # then the build is failed visibly, its ranges too, and the membership is what it was
    build.refresh_from_db()
    assert build.status == TagBuild.Status.FAILED and "stopped" in build.error
    assert _members(t1) == [people[3].pk]
    assert _matches() == 0
    done.refresh_from_db()
    assert done.status == "done"
    assert set(TagBuildPart.objects.filter(build=build).values_list("status", flat=True)) == {
        "done",
        "failed",
    }
    # and a second sweep finds nothing more
    assert tasks.fail_orphaned_builds() == 0


def test_a_small_tag_stays_one_statement(rule_tags, settings):
    # given fewer customers than the threshold
    t1, people, version = _world_of_three(rule_tags)
    settings.TAG_FANOUT_MIN_CUSTOMERS = 5
    build = _queued(t1, version)
    tasks.run_tag_build(build.pk)
    build.refresh_from_db()
    # then it was built without ranges
    assert build.status == TagBuild.Status.DONE
    assert not TagBuildPart.objects.filter(build=build).exists()
    assert _members(t1) == [person.pk for person in people[:3]]


def test_an_older_build_joining_after_a_newer_one_leaves_the_newer_membership(
    rule_tags, settings, django_capture_on_commit_callbacks
):
    # given two fanned-out builds of a tag (as two joins upstream would queue), the older of the Shanghai
    # customers, the newer of the Beijing one, their ranges not run yet
    t1, people, shanghai = _world_of_three(rule_tags)
    beijing = TagVersion.objects.create(
        tag=t1, number=2, definition={"attr": "city", "op": "=", "value": "Beijing"}, depends_on=[]
    )
    settings.TAG_FANOUT_MIN_CUSTOMERS, settings.TAG_FANOUT_PARTS = 0, 2
    with django_capture_on_commit_callbacks() as older_ranges:
        older = _queued(t1, shanghai)
        tasks.run_tag_build(older.pk)
    with django_capture_on_commit_callbacks() as newer_ranges:
        newer = _queued(t1, beijing)
        tasks.run_tag_build(newer.pk)
    # when the newer build's ranges run (and join) first
    with django_capture_on_commit_callbacks(execute=True):
        for callback in [*newer_ranges, *older_ranges]:
            callback()
    # then the newer build's membership stands, and the older one says why it did not apply
    older.refresh_from_db()
    newer.refresh_from_db()
    assert newer.status == TagBuild.Status.DONE
    assert older.status == TagBuild.Status.FAILED and "newer build" in older.error
    assert _members(t1) == [people[3].pk]
    assert _matches() == 0
