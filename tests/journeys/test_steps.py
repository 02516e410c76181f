"""The step engine: waits, branches, splits, exit, goals, holdouts, and each step run exactly once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from journeys import admission, engine
from journeys.models import Enrolment, StepRun
from tests.crm_tags import factories as crm
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


def _start(manager, steps, n=1, **kwargs):
    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, steps=steps, **kwargs)
    people = f.customers(n, **kwargs.pop("customer_fields", {}))
    f.enter(tag, people)
    f.admit()
    return journey, people


def _runs(journey):
    return [
        (r.step, r.outcome, r.detail) for r in StepRun.objects.filter(journey=journey).order_by("at", "pk")
    ]


def test_a_wait_holds_until_its_time_then_goes_on(manager):
    journey, _people = _start(manager, [{"wait": {"days": 2, "hours": 3}}, {"exit": True}])
    now = timezone.now()
    engine.run_due(now=now)
    enrolment = f.enrolments(journey)[0]
    assert enrolment.state == "active" and enrolment.step == "0"
    assert enrolment.next_at == now + timedelta(days=2, hours=3)
    # nothing is due before then
    assert engine.run_due(now=now + timedelta(days=2)) == 0
    engine.run_due(now=now + timedelta(days=2, hours=3))
    enrolment.refresh_from_db()
    assert (enrolment.state, enrolment.exit_reason) == ("exited", "exit_step")
    assert [(s, o) for s, o, _d in _runs(journey)] == [("0", "passed"), ("1", "passed")]


def test_a_wait_until_a_date(manager):
    until = timezone.now() + timedelta(days=5)
    journey, _ = _start(manager, [{"wait": {"until": until.isoformat()}}])
    engine.run_due()
    assert f.enrolments(journey)[0].next_at == until
    engine.run_due(now=until)
    assert f.enrolments(journey)[0].state == "completed"


def test_wait_until_event_takes_the_then_path_when_the_event_arrives(manager):
    admission.process_new_events()
    steps = [
        {
            "wait": {"until_event": "order", "timeout_days": 7},
            "then": [{"id": "thanks", "wait": {"hours": 0}}],
            "timeout": [{"id": "nudge", "wait": {"hours": 0}}],
        }
    ]
    journey, (buyer, idle) = _start(manager, steps, n=2)
    now = timezone.now()
    engine.run_due(now=now)
    # the buyer orders: the event pass wakes their wait early
    crm.events([(buyer, "order", now + timedelta(seconds=1), Decimal("10"))])
    woken = admission.process_new_events(now=now + timedelta(hours=1))
    assert woken["woken"] == 1
    engine.run_due(now=now + timedelta(hours=1))
    # the idle one times out after 7 days
    engine.run_due(now=now + timedelta(days=7))
    runs = {(r.enrolment.customer_id, r.step): r.detail for r in StepRun.objects.filter(journey=journey)}
    assert runs[(buyer.pk, "0")] == {"path": "then"}
    assert (buyer.pk, "thanks") in runs and (buyer.pk, "nudge") not in runs
    assert runs[(idle.pk, "0")] == {"path": "timeout"}
    assert (idle.pk, "nudge") in runs and (idle.pk, "thanks") not in runs


def test_a_branch_reads_the_customer_now(manager):
    steps = [
        {
            "branch": {
                "if": {"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1},
                "then": [{"id": "vip", "wait": {"hours": 0}}],
                "else": [{"id": "other", "wait": {"hours": 0}}],
            }
        }
    ]
    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, steps=steps)
    buyer, browser = f.customers(2)
    crm.events([(buyer, "order", timezone.now() - timedelta(days=3), Decimal("80"))])
    f.enter(tag, [buyer, browser])
    f.admit()
    engine.run_due()
    taken = {(r.enrolment.customer_id, r.step) for r in StepRun.objects.filter(journey=journey)}
    assert (buyer.pk, "vip") in taken and (buyer.pk, "other") not in taken
    assert (browser.pk, "other") in taken and (browser.pk, "vip") not in taken
    assert StepRun.objects.get(journey=journey, step="0", enrolment__customer=buyer).detail == {
        "path": "then"
    }


def test_a_split_is_deterministic_per_enrolment_and_follows_the_percents(manager):
    steps = [
        {
            "split": [
                {"percent": 30, "steps": [{"id": "a", "wait": {"hours": 0}}]},
                {"percent": 70, "steps": []},
            ]
        }
    ]
    journey, _ = _start(manager, steps, n=40)
    engine.run_due()
    for enrolment in f.enrolments(journey):
        arm = StepRun.objects.get(enrolment=enrolment, step="0").detail["arm"]
        assert arm == (0 if engine.split_bucket(enrolment.pk, "0") < 30 else 1)
        assert StepRun.objects.filter(enrolment=enrolment, step="a").exists() == (arm == 0)
    arms = [r.detail["arm"] for r in StepRun.objects.filter(journey=journey, step="0")]
    assert 0 in arms and 1 in arms


def test_the_goal_event_ends_the_enrolment_as_converted(manager):
    admission.process_new_events()
    journey, (buyer, idle) = _start(
        manager,
        [{"wait": {"days": 3}}, {"id": "late", "wait": {"hours": 0}}],
        n=2,
        goal={"event": "order", "within_days": 14},
    )
    now = timezone.now()
    engine.run_due(now=now)
    crm.events([(buyer, "order", now + timedelta(days=1), Decimal("99"))])
    assert admission.process_new_events(now=now + timedelta(days=1))["converted"] == 1
    engine.run_due(now=now + timedelta(days=3))
    states = {e.customer_id: e for e in f.enrolments(journey)}
    assert states[buyer.pk].state == "converted" and states[buyer.pk].converted_at == now + timedelta(days=1)
    assert states[idle.pk].state == "completed"
    assert not StepRun.objects.filter(enrolment=states[buyer.pk], step="late").exists()


def test_holdout_never_acts_but_its_conversions_count(manager, support_team):
    # given a journey whose every step would act (a notification), with a 50 % holdout
    steps = [{"action": "notify", "team": support_team.name}]
    journey, people = _start(
        manager,
        steps,
        n=30,
        entry={"reentry": "never", "holdout_percent": 50},
        goal={"event": "order", "within_days": 7},
    )
    held = [e for e in f.enrolments(journey) if e.holdout]
    assert held
    # when the engine runs past the goal's window
    admission.process_new_events()
    crm.events([(held[0].customer, "order", timezone.now() + timedelta(minutes=1), Decimal("5"))])
    admission.process_new_events()
    engine.run_due(now=timezone.now() + timedelta(days=8))
    # then no holdout enrolment ran a step, and the holdout's conversion is recorded
    assert not StepRun.objects.filter(enrolment__in=held).exists()
    assert StepRun.objects.filter(journey=journey).count() == 30 - len(held)
    held_states = {e.pk: e.state for e in Enrolment.objects.filter(pk__in=[e.pk for e in held])}
    assert held_states[held[0].pk] == "converted"
    assert set(held_states.values()) <= {"converted", "completed"}


def test_a_step_is_recorded_once_per_enrolment(manager):
    journey, _ = _start(manager, [{"wait": {"hours": 0}}])
    engine.run_due()
    run = StepRun.objects.get(journey=journey)
    with pytest.raises(IntegrityError), transaction.atomic():
        StepRun.objects.create(
            enrolment=run.enrolment,
            journey=journey,
            step=run.step,
            kind="wait",
            outcome="passed",
            at=timezone.now(),
        )


def test_the_beat_tick_admits_runs_and_sends(manager, support_team):
    from accounts.models import Notification
    from journeys import tasks

    tag = f.manual_tag()
    journey = f.journey(manager, tag=tag, steps=[{"action": "notify", "team": support_team.name}])
    f.enter(tag, f.customers(2))
    tasks.tick()
    assert {e.state for e in f.enrolments(journey)} == {"completed"}
    assert Notification.objects.filter(kind="journey.notify").count() == 2  # one manager, two customers
