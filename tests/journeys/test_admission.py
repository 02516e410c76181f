"""Triggers and entry rules: who enters a journey, once, from which trigger source."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm_tags import services as tag_services
from crm_tags.rules import gray_filter
from journeys import admission, engine
from journeys.models import Enrolment, Journey
from tests.crm_tags import factories as crm
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


def test_customers_entering_the_tag_are_enrolled_once(manager):
    # given an active journey on entering a manual tag
    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag)
    people = f.customers(3)
    # when they enter the tag and the trigger is read twice
    f.enter(tag, people)
    first = f.admit()
    second = f.admit()
    # then each is enrolled exactly once, from that build
    assert (first, second) == (3, 0)
    rows = f.enrolments(journey)
    assert sorted(e.customer_id for e in rows) == sorted(p.pk for p in people)
    assert len({e.trigger_ref for e in rows}) == 1 and rows[0].trigger_ref.startswith("b")


def test_members_before_activation_are_not_replayed(manager):
    tag = f.manual_tag()
    early = f.customers(2)
    f.enter(tag, early)
    journey = f.journey(manager, tag=tag)
    late = f.customers(1)
    f.enter(tag, late)
    f.admit()
    assert [e.customer_id for e in f.enrolments(journey)] == [late[0].pk]


def test_tag_exited_trigger_enrols_who_left(manager):
    tag = f.manual_tag()
    people = f.customers(3)
    f.enter(tag, people)
    journey = f.journey(manager, trigger={"kind": "tag_exited", "tag": tag.slug})
    f.leave(tag, people[:1])
    f.admit()
    assert [e.customer_id for e in f.enrolments(journey)] == [people[0].pk]


def test_exit_on_leave_ends_the_enrolment(manager):
    tag = f.manual_tag()
    journey = f.journey(
        manager,
        trigger={"kind": "tag_entered", "tag": tag.slug, "exit_on_leave": True},
        steps=[{"wait": {"days": 3}}],
    )
    people = f.customers(2)
    f.enter(tag, people)
    f.admit()
    engine.run_due()
    f.leave(tag, people[:1])
    f.admit()
    states = {e.customer_id: (e.state, e.exit_reason) for e in f.enrolments(journey)}
    assert states == {people[0].pk: ("exited", "left_tag"), people[1].pk: ("active", "")}


def test_a_rule_tag_build_triggers_the_journey(manager):
    # given a published rule tag (Beijing customers) and a journey on entering it
    from crm_tags import services as tag_services

    tag = crm.rule_tag("beijing", {"attr": "city", "op": "=", "value": "Beijing"})
    tag_services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=manager)
    journey = f.journey(manager, tag=tag)
    person = f.customer(city="Beijing")
    f.customer(city="Shanghai")
    # when the tag is built
    tag_services.tags_rebuild_all(trigger="manual")
    f.admit()
    # then only the Beijing customer is enrolled
    assert [e.customer_id for e in f.enrolments(journey)] == [person.pk]


@pytest.mark.parametrize(
    ("reentry", "days_later", "expected"),
    [("never", 400, 1), ("always", 0, 2), ("after_days", 10, 1), ("after_days", 40, 2)],
)
def test_reentry_rules(manager, reentry, days_later, expected):
    # given a customer who went through a journey (no steps: completes at once)
    tag = f.manual_tag()
    entry = {"reentry": reentry} | ({"reentry_days": 30} if reentry == "after_days" else {})
    journey = f.journey(manager, tag=tag, entry=entry)
    person = f.customer()
    f.enter(tag, [person])
    f.admit()
    engine.run_due()
    assert f.enrolments(journey)[0].state == "completed"
    # when they leave and enter again `days_later` days after
    Enrolment.objects.filter(journey=journey).update(entered_at=timezone.now() - timedelta(days=days_later))
    f.leave(tag, [person])
    f.enter(tag, [person])
    f.admit()
    # then they are enrolled again or not, by the rule
    assert len(f.enrolments(journey)) == expected


def test_always_never_enrols_someone_still_walking(manager):
    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, entry={"reentry": "always"}, steps=[{"wait": {"days": 1}}])
    person = f.customer()
    f.enter(tag, [person])
    f.admit()
    engine.run_due()
    f.leave(tag, [person])
    f.enter(tag, [person])
    f.admit()
    assert len(f.enrolments(journey)) == 1


def test_entry_condition_filters_with_a_rule_tree(manager):
    tag = f.manual_tag()
    journey = f.journey(
        manager,
        tag=tag,
        entry={"reentry": "never", "condition": {"attr": "city", "op": "=", "value": "Hangzhou"}},
    )
    hz, sh = f.customer(city="Hangzhou"), f.customer(city="Shanghai")
    f.enter(tag, [hz, sh])
    f.admit()
    assert [e.customer_id for e in f.enrolments(journey)] == [hz.pk]


def _gray(seed: int, percent: int, ids: list[int]) -> set[int]:
    from django.db import connection

    sql, params = gray_filter(seed, percent)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c FROM unnest(%s::bigint[]) c WHERE {sql.replace('{cid}', 'c')}",  # noqa: S608
            [ids, *params],
        )
        return {row[0] for row in cursor.fetchall()}


def test_gray_share_admits_the_stable_hash_group_and_raising_only_adds(manager):
    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, percent=30)
    people = f.customers(60)
    ids = [p.pk for p in people]
    f.enter(tag, people[:30])
    f.admit()
    in_at_30 = {e.customer_id for e in f.enrolments(journey)}
    assert in_at_30 == _gray(admission.gray_seed(journey.pk), 30, ids[:30])
    # raising the share keeps everyone already in and admits the new hash group from then on
    from journeys import services

    services.journey_activate(journey=journey, by=manager, percent=60)
    f.enter(tag, people[30:])
    f.admit()
    after = {e.customer_id for e in f.enrolments(journey)}
    assert in_at_30 <= after
    assert after - in_at_30 == _gray(admission.gray_seed(journey.pk), 60, ids[30:])


def test_holdout_is_the_hash_group_and_is_marked(manager):
    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, entry={"reentry": "never", "holdout_percent": 40})
    people = f.customers(50)
    f.enter(tag, people)
    f.admit()
    held = {e.customer_id for e in f.enrolments(journey) if e.holdout}
    assert held == _gray(admission.holdout_seed(journey.pk), 40, [p.pk for p in people])
    assert 0 < len(held) < 50


def test_event_trigger_admits_on_new_matching_events_only(manager):
    # given the engine has read the events so far, and a journey on big orders
    old = f.customer()
    crm.events([(old, "order", timezone.now(), Decimal("500"))])
    admission.process_new_events()
    journey = f.journey(
        manager,
        trigger={"kind": "event", "event": "order", "condition": {"amount": {"op": ">=", "value": 300}}},
    )
    big, small, other = f.customers(3)
    # when new events arrive (two big orders by one customer, a small one, another type)
    now = timezone.now()
    crm.events(
        [
            (big, "order", now, Decimal("350")),
            (big, "order", now, Decimal("900")),
            (small, "order", now, Decimal("20")),
            (other, "page_view", now, None),
        ]
    )
    result = admission.process_new_events()
    again = admission.process_new_events()
    # then the big spender enters once; nothing is read twice
    assert result["entered"] == 1 and again["entered"] == 0
    assert [e.customer_id for e in f.enrolments(journey)] == [big.pk]
    assert f.enrolments(journey)[0].trigger_ref.startswith("e")


def test_an_events_import_wakes_the_event_journeys_at_once(manager, django_capture_on_commit_callbacks):
    # given the engine has read the events so far, and a journey on orders
    admission.process_new_events()
    journey = f.journey(manager, trigger={"kind": "event", "event": "order"})
    buyer = f.customer(external_id="BUY1")
    # when a file with their order is imported and commits (no beat tick runs)
    csv = f"customer_external_id,event_type,occurred_at,amount,channel\nBUY1,order,{timezone.now().isoformat()},80,web\n"
    with django_capture_on_commit_callbacks(execute=True):
        tag_services.events_import(upload=io.BytesIO(csv.encode()), by=None)
    # then they are enrolled and their first step ran
    (enrolment,) = f.enrolments(journey)
    assert enrolment.customer_id == buyer.pk and enrolment.trigger_ref.startswith("e")
    assert enrolment.state == "completed"


def test_event_trigger_with_a_property_condition(manager):
    admission.process_new_events()
    journey = f.journey(
        manager, trigger={"kind": "event", "event": "signup", "condition": {"properties": {"source": "app"}}}
    )
    app_user = f.customer()
    web_user = f.customer()
    from crm_tags.models import Event

    Event.objects.create(
        customer=app_user, event_type="signup", occurred_at=timezone.now(), properties={"source": "app"}
    )
    Event.objects.create(
        customer=web_user, event_type="signup", occurred_at=timezone.now(), properties={"source": "web"}
    )
    admission.process_new_events()
    assert [e.customer_id for e in f.enrolments(journey)] == [app_user.pk]


def test_a_paused_journey_admits_nobody_and_runs_nothing(manager):
    from journeys import services

    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, steps=[{"wait": {"hours": 0}}])
    services.journey_pause(journey=journey, by=manager)
    f.enter(tag, f.customers(2))
    assert f.admit() == 0
    assert Journey.objects.get(pk=journey.pk).status == "paused"
    assert f.enrolments(journey) == []


def test_a_committed_tag_build_wakes_the_journey(manager, django_capture_on_commit_callbacks):
    # given an active journey with one action, and a webhook-free step
    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, steps=[{"wait": {"hours": 0}}])
    # when customers enter the tag and the build's transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        f.enter(tag, f.customers(2))
    # then the wake-up task admitted them and ran their first step already
    rows = f.enrolments(journey)
    assert len(rows) == 2 and {e.state for e in rows} == {"completed"}
