"""A rebuild of every tag (services.tags_rebuild_all) fans out the rules over many customers, and the tags
that read one are built after its join, from its new membership, once; the chain goes on from there."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from crm_tags import fanout, services
from crm_tags.models import Tag, TagBuild, TagBuildPart, TagMembership
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

SHANGHAI = {"attr": "city", "op": "=", "value": "Shanghai"}


def _published(slug: str, definition: dict) -> Tag:
    tag = factories.rule_tag(slug, definition)
    Tag.objects.filter(pk=tag.pk).update(current_version=tag.versions.get(), rollout_percent=100)
    return Tag.objects.get(pk=tag.pk)


def _members(tag: Tag) -> set[int]:
    return set(TagMembership.objects.filter(tag=tag).values_list("customer_id", flat=True))


def _set_members(tag: Tag, ids: set[int]) -> None:
    TagMembership.objects.filter(tag=tag).delete()
    TagMembership.objects.bulk_create(
        TagMembership(tag=tag, customer_id=i, since=timezone.now()) for i in ids
    )


@pytest.fixture
def chain(db) -> dict:
    """Tags a (Shanghai customers) <- b (reads a) <- c (reads b), all three holding the Beijing customers
    (an old membership), and the customers' ids by city."""
    shanghai = {factories.customer(city="Shanghai").pk for _ in range(5)}
    beijing = {factories.customer(city="Beijing").pk for _ in range(3)}
    tags = {"a": _published("a", SHANGHAI)}
    tags["b"] = _published("b", {"tag": "a"})
    tags["c"] = _published("c", {"tag": "b"})
    for tag in tags.values():
        _set_members(tag, beijing)
    return {"tags": tags, "shanghai": shanghai, "beijing": beijing}


def _builds(tag: Tag) -> list[TagBuild]:
    return list(TagBuild.objects.filter(tag=tag).order_by("pk"))


def test_the_dependents_wait_for_the_join_and_are_built_once_from_the_new_membership(
    chain, settings, django_capture_on_commit_callbacks
):
    # given every rule over at least 0 customers fans out over 3 ranges
    settings.TAG_FANOUT_MIN_CUSTOMERS, settings.TAG_FANOUT_PARTS = 0, 3
    a, b, c = chain["tags"]["a"], chain["tags"]["b"], chain["tags"]["c"]
    # when every tag is rebuilt, the range tasks held back (no worker has run them yet)
    with django_capture_on_commit_callbacks() as held:
        builds = services.tags_rebuild_all(trigger=TagBuild.Trigger.IMPORT)
    # then only a's build was made, still running, and b and c are untouched
    assert [(build.tag_id, build.status) for build in builds] == [(a.pk, TagBuild.Status.RUNNING)]
    assert _builds(b) == _builds(c) == []
    assert _members(b) == chain["beijing"]
    # when the workers run the ranges (and what they queue)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in held:
            callback()
    # then a is built, then b once (queued by a's join, after it), then c once (queued by b's)
    (built_a,) = _builds(a)
    (built_b,) = _builds(b)
    (built_c,) = _builds(c)
    assert built_a.status == built_b.status == built_c.status == TagBuild.Status.DONE
    assert built_a.finished_at <= built_b.created_at and built_b.finished_at <= built_c.created_at
    assert built_b.trigger == built_c.trigger == TagBuild.Trigger.DEPENDENCY
    # b's and c's builds fanned out too: the chain goes on through every join
    assert TagBuildPart.objects.filter(build__in=[built_b, built_c]).exists()
    assert _members(a) == _members(b) == _members(c) == chain["shanghai"]
    fanned = {tag: _members(tag) for tag in (a, b, c)}
    # and the same rebuild in one statement per tag, from the same old membership, gives the same members
    for tag in (a, b, c):
        _set_members(tag, chain["beijing"])
    settings.TAG_FANOUT_MIN_CUSTOMERS = 10**9
    single = services.tags_rebuild_all(trigger=TagBuild.Trigger.IMPORT)
    assert [build.status for build in single] == [TagBuild.Status.DONE] * 3
    assert {tag: _members(tag) for tag in (a, b, c)} == fanned


def test_a_failing_range_keeps_the_old_membership_and_builds_no_dependent(
    chain, settings, second_range_fails, django_capture_on_commit_callbacks
):
    # given a fanned-out rebuild whose second range fails
    settings.TAG_FANOUT_MIN_CUSTOMERS, settings.TAG_FANOUT_PARTS = 0, 3
    a, b = chain["tags"]["a"], chain["tags"]["b"]
    # when every tag is rebuilt
    with django_capture_on_commit_callbacks(execute=True):
        (build,) = services.tags_rebuild_all(trigger=TagBuild.Trigger.IMPORT)
    # then a's build failed visibly and kept its old members, and b was not built from half of a
    build.refresh_from_db()
    assert build.status == TagBuild.Status.FAILED and "lost its connection" in build.error
    assert _members(a) == _members(b) == chain["beijing"]
    assert _builds(b) == []


def test_fanned_out_builds_start_after_the_tags_built_in_the_loop(
    chain, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given d reading a (which fans out) and x (which does not; "x" sorts after "a" and "d")
    settings.TAG_FANOUT_MIN_CUSTOMERS, settings.TAG_FANOUT_PARTS = 0, 2
    a = chain["tags"]["a"]
    x = _published("x", {"attr": "city", "op": "=", "value": "Beijing"})
    d = _published("d", {"any": [{"tag": "a"}, {"tag": "x"}]})
    monkeypatch.setattr(fanout, "fans_out", lambda build: build.tag_id == a.pk)
    start = fanout.start
    x_done_at_start = []

    def spy(build: TagBuild) -> None:
        x_done_at_start.append(TagBuild.objects.filter(tag=x, status=TagBuild.Status.DONE).exists())
        start(build)

    monkeypatch.setattr(fanout, "start", spy)
    # when every tag is rebuilt
    with django_capture_on_commit_callbacks(execute=True):
        services.tags_rebuild_all(trigger=TagBuild.Trigger.IMPORT)
    # then a's ranges started only once x was built, and d was built once, after a's join, from both
    assert x_done_at_start == [True]
    (built_d,) = _builds(d)
    assert built_d.status == TagBuild.Status.DONE
    assert _members(d) == chain["shanghai"] | chain["beijing"]


def test_the_dependents_are_built_as_of_the_rebuilds_moment(
    chain, settings, django_capture_on_commit_callbacks
):
    # given a fanned-out rebuild of every tag as of yesterday
    settings.TAG_FANOUT_MIN_CUSTOMERS = 0
    as_of = timezone.now() - timedelta(days=1)
    # when it runs
    with django_capture_on_commit_callbacks(execute=True):
        services.tags_rebuild_all(trigger=TagBuild.Trigger.MANUAL, as_of=as_of)
    # then the builds queued by the joins are as of that moment too
    assert [build.as_of for tag in chain["tags"].values() for build in _builds(tag)] == [as_of] * 3


def test_the_sync_command_says_a_fanned_out_tag_is_still_running(
    chain, settings, django_capture_on_commit_callbacks
):
    # given tags that fan out, and no worker running their ranges yet
    settings.TAG_FANOUT_MIN_CUSTOMERS = 0
    out = io.StringIO()
    # when an operator rebuilds every tag with --sync
    with django_capture_on_commit_callbacks():
        call_command("rebuild_tags", "--sync", stdout=out)
    # then the output names the running tag instead of an empty build
    assert out.getvalue().splitlines() == [
        f"a: running over customer-id ranges on the tags queue (build {_builds(chain['tags']['a'])[0].pk}); "
        "the tags that read it are rebuilt after it."
    ]
