"""The engine's batches: programs kept per version, set-based action steps (issue 20)."""

import pytest
from django.db import connection

from journeys import engine
from journeys.models import Delivery, Enrolment, Journey, JourneyVersion, StepRun
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


def test_a_version_id_used_again_runs_its_own_steps_not_a_kept_program(manager):
    """The whole-suite failure of test_concurrency (issue 20): the browser walk's `flush` restarts every
    sequence, so a later test's version got the id of a version whose program the engine had kept (a wait),
    and its webhook step ran as that wait: no delivery. A kept program is used only for the same steps."""
    tag = f.manual_tag()
    waiting = f.journey(manager, tag=tag, steps=[{"wait": {"days": 3}}])
    f.enter(tag, f.customers(2))
    f.admit()
    assert engine.run_due() == 2
    reused = waiting.active_version_id
    assert engine._programs[reused][1].nodes["0"].kind == "wait"
    # the same id again, as after a sequence restart: the rows go, the sequence steps back
    Enrolment.objects.all().delete()
    StepRun.objects.all().delete()
    Journey.objects.filter(pk=waiting.pk).update(active_version=None)
    JourneyVersion.objects.filter(journey=waiting).delete()
    Journey.objects.filter(pk=waiting.pk).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('journeys_journeyversion', 'id'), %s, false)", [reused]
        )
    destination = f.webhook(manager, "http://127.0.0.1:9/hook")
    other = f.manual_tag()
    acting = f.journey(
        manager, tag=other, steps=[{"action": "webhook", "destination": destination.pk, "template": {}}]
    )
    assert acting.active_version_id == reused
    f.enter(other, f.customers(2))
    f.admit()
    assert engine.run_due() == 2
    assert Delivery.objects.filter(destination=destination).count() == 2
    assert set(StepRun.objects.values_list("kind", "outcome")) == {("webhook", "acted")}


def test_a_webhook_group_is_written_with_its_requests_in_enrolment_order(manager):
    """The set-based step: each item grouped at once, in enrolment order, into requests of at most
    `batch_size`, each body holding exactly its items' payloads; the step runs and enrolments written
    back."""
    import json

    from journeys.models import WebhookRequest

    destination = f.webhook(manager, "http://127.0.0.1:9/hook", batch_size=3)
    tag = f.manual_tag()
    journey = f.journey(
        manager,
        tag=tag,
        steps=[
            {"action": "webhook", "destination": destination.pk, "template": {"offer": "WB10"}},
            {"wait": {"days": 2}},
        ],
    )
    people = f.customers(7)
    f.enter(tag, people)
    f.admit()
    assert engine.run_due(batch_size=100) == 7
    enrolments = f.enrolments(journey)
    by_id = sorted(enrolments, key=lambda e: e.pk)
    requests = list(WebhookRequest.objects.order_by("pk"))
    assert [len(json.loads(r.body)["deliveries"]) for r in requests] == [3, 3, 1]
    keys = [item["idempotency_key"] for r in requests for item in json.loads(r.body)["deliveries"]]
    assert keys == [f"{journey.pk}-{e.pk}-0" for e in by_id]
    item = json.loads(requests[0].body)["deliveries"][0]
    assert item == {
        "idempotency_key": f"{journey.pk}-{by_id[0].pk}-0",
        "journey": journey.pk,
        "step": "0",
        "customer": {"external_id": by_id[0].customer.external_id},
        "payload": {"offer": "WB10"},
    }
    for request in requests:
        body_keys = {i["idempotency_key"] for i in json.loads(request.body)["deliveries"]}
        assert set(request.items.values_list("idempotency_key", flat=True)) == body_keys
    # the step ran once per enrolment, and each moved on to the wait (started, held for two days)
    assert StepRun.objects.filter(step="0", outcome="acted", kind="webhook").count() == 7
    assert StepRun.objects.get(enrolment=by_id[0], step="0").detail == {"destination": destination.pk}
    assert {(e.state, e.step) for e in enrolments} == {("active", "1")}
    assert all(e.step_started_at is not None and e.next_at > e.step_started_at for e in enrolments)
