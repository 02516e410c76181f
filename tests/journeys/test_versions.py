"""A new version of a journey through the API: versions stay immutable, the new one admits new enrolments
once activated, those already walking keep the version they entered with, and the trigger reads on
without a gap when it did not change."""

import pytest

from accounts.models import AuditEntry
from crm_tags.models import TagMembership
from journeys import engine
from journeys.models import Enrolment, Journey, JourneyVersion, StepRun
from tests.journeys import factories as f
from tests.journeys.test_api import _assert_matches_schema

pytestmark = pytest.mark.django_db
JOURNEYS = "/api/v1/journeys/"


@pytest.fixture
def vip(db):
    return f.manual_tag("vip")


def _create(api_for, user, **body) -> int:
    body = {
        "name": "VIP",
        "trigger": {"kind": "tag_entered", "tag": "vip"},
        "entry": {"reentry": "always"},
    } | body
    response = api_for(user).post(JOURNEYS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _new_version(api_for, user, pk, **body):
    body = {"trigger": {"kind": "tag_entered", "tag": "vip"}, "entry": {"reentry": "always"}} | body
    return api_for(user).post(f"{JOURNEYS}{pk}/versions/", body, format="json")


def test_a_new_version_waits_for_activation_then_applies_to_new_enrolments_only(
    api_for, marketer, manager, vip
):
    # given an active journey (v1: wait a day, then tag the customer "done-v1") with one customer walking
    f.manual_tag("done-v1")
    done_v2 = f.manual_tag("done-v2")
    v1_steps = [{"id": "w", "wait": {"days": 1}}, {"id": "t1", "action": "tag_add", "tag": "done-v1"}]
    pk = _create(api_for, marketer, steps=v1_steps)
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    early, late = f.customers(2)
    f.enter(vip, [early])
    f.admit()
    engine.run_due()
    # when the team posts version 2 (tag "done-v2" at once)
    response = _new_version(
        api_for, marketer, pk, steps=[{"id": "t2", "action": "tag_add", "tag": "done-v2"}]
    )
    # then it answers {id, version} and the journey still runs version 1 until it is activated again
    assert response.status_code == 201, response.content
    assert response.json() == {"id": pk, "version": 2}
    _assert_matches_schema(response.json(), "/api/v1/journeys/{id}/versions/", "post", "201")
    detail = api_for(marketer).get(f"{JOURNEYS}{pk}/").json()
    assert (detail["version"], detail["latest_version"]) == (1, 2)
    _assert_matches_schema(detail, "/api/v1/journeys/{id}/")
    assert api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json").json()["version"] == 2
    # and a customer entering now walks version 2, while the one already walking keeps version 1
    f.enter(vip, [late])
    f.admit()
    engine.run_due()
    versions = dict(Enrolment.objects.filter(journey_id=pk).values_list("customer_id", "version__number"))
    assert versions == {early.pk: 1, late.pk: 2}
    assert TagMembership.objects.filter(tag=done_v2, customer=late).exists()
    assert not TagMembership.objects.filter(tag=done_v2, customer=early).exists()


def test_the_walking_enrolment_finishes_its_own_version(api_for, marketer, manager, vip):
    from datetime import timedelta

    from django.utils import timezone

    done_v1 = f.manual_tag("done-v1")
    f.manual_tag("done-v2")
    pk = _create(
        api_for,
        marketer,
        steps=[{"id": "w", "wait": {"days": 1}}, {"id": "t1", "action": "tag_add", "tag": "done-v1"}],
    )
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    person = f.customer()
    f.enter(vip, [person])
    f.admit()
    engine.run_due()
    _new_version(api_for, marketer, pk, steps=[{"id": "t2", "action": "tag_add", "tag": "done-v2"}])
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    engine.run_due(now=timezone.now() + timedelta(days=2))
    assert list(StepRun.objects.filter(journey_id=pk).order_by("pk").values_list("step", flat=True)) == [
        "w",
        "t1",
    ]
    assert TagMembership.objects.filter(tag=done_v1, customer=person).exists()
    # version 1 is unchanged
    v1 = JourneyVersion.objects.get(journey_id=pk, number=1)
    assert v1.steps[1]["tag"] == "done-v1" and v1.activated_at is not None


def test_with_the_same_trigger_the_new_version_reads_on_without_a_gap(api_for, marketer, manager, vip):
    pk = _create(api_for, marketer)
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    # a build the old version has not read yet when the new version is activated
    person = f.customer()
    f.enter(vip, [person])
    _new_version(api_for, marketer, pk, steps=[{"wait": {"days": 2}}])
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    f.admit()
    enrolment = Enrolment.objects.get(journey_id=pk)
    assert (enrolment.customer_id, enrolment.version.number) == (person.pk, 2)


def test_with_another_trigger_the_new_version_starts_from_now(api_for, marketer, manager, vip):
    other = f.manual_tag("other")
    pk = _create(api_for, marketer)
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    f.enter(other, f.customers(1))  # before the new version: not replayed
    _new_version(api_for, marketer, pk, trigger={"kind": "tag_entered", "tag": "other"})
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json")
    f.admit()
    assert not Enrolment.objects.filter(journey_id=pk).exists()
    newcomer = f.customer()
    f.enter(other, [newcomer])
    f.admit()
    assert list(Enrolment.objects.filter(journey_id=pk).values_list("customer_id", flat=True)) == [
        newcomer.pk
    ]


def test_a_bad_version_is_400_naming_the_path_and_nothing_is_saved(api_for, marketer, vip):
    pk = _create(api_for, marketer)
    response = _new_version(api_for, marketer, pk, steps=[{"action": "touchpoint", "channel": "sms"}])
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == ["steps[0].action"]
    assert JourneyVersion.objects.filter(journey_id=pk).count() == 1
    assert (
        api_for(marketer).post(f"{JOURNEYS}{pk}/versions/", {"steps": []}, format="json").status_code == 400
    )


def test_a_new_version_above_the_gray_limit_needs_a_manager_again(api_for, marketer, manager, vip):
    pk = _create(api_for, marketer)
    api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {"percent": 100}, format="json")
    assert _new_version(api_for, marketer, pk, steps=[{"wait": {"days": 1}}]).status_code == 201
    assert api_for(marketer).post(f"{JOURNEYS}{pk}/activate/", {}, format="json").status_code == 403
    assert Journey.objects.get(pk=pk).active_version.number == 1
    assert api_for(manager).post(f"{JOURNEYS}{pk}/activate/", {}, format="json").json()["version"] == 2


def test_who_may_post_a_version(api_for, marketer, other_requester, agent, vip):
    pk = _create(api_for, marketer)
    assert _new_version(api_for, other_requester, pk).status_code == 404
    assert _new_version(api_for, None, pk).status_code == 401
    assert _new_version(api_for, agent, pk).json() == {"id": pk, "version": 2}
    assert _new_version(api_for, marketer, pk).json() == {"id": pk, "version": 3}
    assert JourneyVersion.objects.filter(journey_id=pk).count() == 3


def test_a_new_version_is_audited(api_for, marketer, vip):
    pk = _create(api_for, marketer)
    _new_version(api_for, marketer, pk)
    entry = AuditEntry.objects.filter(object_id=str(pk), action="journey.version_create").get()
    assert (entry.actor_id, entry.changes) == (marketer.pk, {"version": 2, "trigger": "tag_entered"})
