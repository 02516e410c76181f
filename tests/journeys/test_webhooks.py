"""Webhook actions end to end against a real receiver on loopback: the Contract's body and headers, the
HMAC signature, batching per destination, retries with the same Idempotency-Key, the dead-letter list, and
personal values only where the destination's purpose and the customer's consent allow."""

from datetime import timedelta

import pytest
from django.utils import timezone

from journeys import delivery, engine, selectors
from journeys.models import Delivery, StepRun, WebhookRequest
from tests.journeys import factories as f
from tests.journeys import receiver as rx

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-tests"


@pytest.fixture
def hook():
    servers = []

    def _start(**options):
        receiver, url, server = rx.start(SECRET, **options)
        servers.append(server)
        return receiver, url

    yield _start
    for server in servers:
        server.shutdown()
        server.server_close()


def _run(manager, destination, people, template=None, **kwargs):
    tag = f.manual_tag()
    step = {
        "action": "webhook",
        "destination": destination.pk,
        "template": template or {"coupon": "WELCOME10"},
    }
    journey = f.journey(manager, tag=tag, steps=[step], **kwargs)
    f.enter(tag, people)
    f.admit()
    engine.run_due()
    return journey


def test_the_body_headers_and_signature_follow_the_contract(manager, hook):
    receiver, url = hook()
    destination = f.webhook(manager, url, secret=SECRET)
    person = f.customer(external_id="EXT-1", city="Suzhou")
    journey = _run(
        manager, destination, [person], template={"coupon": "WELCOME10", "city": "{{customer.city}}"}
    )
    delivery.send_due()
    [got] = receiver.received
    enrolment = f.enrolments(journey)[0]
    key = f"{journey.pk}-{enrolment.pk}-0"
    assert got.signature_ok and got.status == 200
    assert got.body == {
        "deliveries": [
            {
                "idempotency_key": key,
                "journey": journey.pk,
                "step": "0",
                "customer": {"external_id": "EXT-1"},
                "payload": {"coupon": "WELCOME10", "city": "Suzhou"},
            }
        ]
    }
    assert got.idempotency_key == WebhookRequest.objects.get().idempotency_key
    assert StepRun.objects.get(enrolment=enrolment).outcome == "acted"


def test_items_are_batched_per_destination_up_to_batch_size(manager, hook):
    receiver, url = hook()
    destination = f.webhook(manager, url, secret=SECRET, batch_size=2)
    people = f.customers(5)
    journey = _run(manager, destination, people)
    delivery.send_due()
    assert sorted(len(r.body["deliveries"]) for r in receiver.received) == [1, 2, 2]
    expected = {f"{journey.pk}-{e.pk}-0" for e in f.enrolments(journey)}
    assert sorted(receiver.delivered_keys()) == sorted(expected)


def test_every_key_arrives_exactly_once_when_the_first_attempt_fails(manager, hook):
    # given a receiver that answers 500 to the first request
    receiver, url = hook(fail_first=1)
    destination = f.webhook(manager, url, secret=SECRET, batch_size=2)
    people = f.customers(4)
    journey = _run(manager, destination, people)
    now = timezone.now()
    # when the deliveries are sent, and again after the backoff
    delivery.send_due(now=now)
    assert [r.status for r in receiver.received] == [500, 200]
    failed = WebhookRequest.objects.get(attempts=1, status="pending")
    assert failed.next_attempt_at == now + timedelta(seconds=30)
    assert delivery.send_due(now=now + timedelta(seconds=10))["requests_tried"] == 0
    delivery.send_due(now=now + timedelta(seconds=30))
    # then the retry carried the same Idempotency-Key and body, and every key was delivered exactly once
    first, retry = receiver.received[0], receiver.received[2]
    assert retry.idempotency_key == first.idempotency_key and retry.body == first.body and retry.status == 200
    expected = sorted(f"{journey.pk}-{e.pk}-0" for e in f.enrolments(journey))
    assert sorted(receiver.delivered_keys()) == expected
    # a key was re-sent only in the retry of the request that got no 2xx
    sent = [item["idempotency_key"] for r in receiver.received for item in r.body["deliveries"]]
    assert len(sent) == len(expected) + len(first.body["deliveries"])
    # the items are their requests' (written once, not again when sent), and every request was delivered
    assert set(Delivery.objects.values_list("status", flat=True)) == {"grouped"}
    assert set(WebhookRequest.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_request_failing_every_attempt_is_dead_lettered(manager, hook):
    receiver, url = hook(always_fail=True)
    destination = f.webhook(manager, url, secret=SECRET)
    person = f.customer()
    journey = _run(manager, destination, [person])
    now = timezone.now()
    for seconds in (0, 30, 90):  # the 3rd failure is the last (JOURNEYS_WEBHOOK_MAX_ATTEMPTS = 3)
        delivery.send_due(now=now + timedelta(seconds=seconds))
    request = WebhookRequest.objects.get()
    assert (request.status, request.attempts, request.last_status) == ("dead", 3, 500)
    assert Delivery.objects.get().status == "dead"
    assert delivery.send_due(now=now + timedelta(days=1))["requests_tried"] == 0
    assert len(receiver.received) == 3
    stats = selectors.journey_stats(journey=journey)
    assert stats["steps"][0]["failed"] == 1 and stats["steps"][0]["acted"] == 0


def test_an_unreachable_receiver_is_retried(manager):
    destination = f.webhook(manager, "http://127.0.0.1:9/nothing-listens", secret=SECRET)
    _run(manager, destination, [f.customer()])
    delivery.send_due()
    request = WebhookRequest.objects.get()
    assert request.status == "pending" and request.attempts == 1 and request.last_status is None
    assert request.last_error == "ConnectionError"


def test_a_purpose_destination_needs_consent_and_may_then_receive_personal_fields(manager, hook):
    # given an SMS coupon service that needs marketing_sms consent and asks for the phone number
    receiver, url = hook()
    destination = f.webhook(manager, url, secret=SECRET, purpose="marketing_sms", customer_facing=True)
    yes = f.customer(phone="13911112222")
    no = f.customer(phone="13933334444")
    f.grant([yes], "marketing_sms")
    journey = _run(manager, destination, [yes, no], template={"to": "{{customer.phone}}"})
    delivery.send_due()
    # then only the consenting customer's item went out, with their phone
    [got] = receiver.received
    assert [item["payload"] for item in got.body["deliveries"]] == [{"to": "13911112222"}]
    assert "13933334444" not in str(got.body)
    # once delivered, the stored body and items no longer hold the phone number
    assert "13911112222" not in WebhookRequest.objects.get().body
    assert "13911112222" not in str(list(Delivery.objects.values_list("payload", flat=True)))
    skipped = StepRun.objects.get(journey=journey, enrolment__customer=no)
    assert (skipped.outcome, skipped.detail["reason"]) == ("skipped", "no_consent")


def test_a_customer_facing_webhook_is_capped_per_channel(manager, hook, settings):
    settings.JOURNEYS_FREQUENCY_CAP = {"sms": 1}
    receiver, url = hook()
    destination = f.webhook(manager, url, secret=SECRET, purpose="marketing_sms", customer_facing=True)
    person = f.customer()
    f.grant([person], "marketing_sms")
    _run(manager, destination, [person])
    _run(manager, destination, [person])
    delivery.send_due()
    assert len(receiver.delivered_keys()) == 1


def test_quiet_hours_hold_a_customer_facing_webhook_but_not_an_internal_one(manager, hook, settings):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    settings.JOURNEYS_QUIET_HOURS = (22, 8)
    shanghai = ZoneInfo("Asia/Shanghai")
    day = (timezone.now().astimezone(shanghai) + timedelta(days=1)).date()
    late = datetime(day.year, day.month, day.day, 23, 0, tzinfo=shanghai)
    _receiver, url = hook()
    facing = f.webhook(manager, url, secret=SECRET, customer_facing=True)
    internal = f.webhook(manager, url, secret=SECRET)
    person = f.customer()
    tag = f.manual_tag()
    journeys = [
        f.journey(manager, tag=tag, steps=[{"action": "webhook", "destination": d.pk, "template": {}}])
        for d in (facing, internal)
    ]
    f.enter(tag, [person])
    f.admit()
    engine.run_due(now=late)
    held, sent = (f.enrolments(j)[0] for j in journeys)
    assert held.state == "active" and held.next_at == late.replace(hour=8) + timedelta(days=1)
    assert sent.state == "completed"


def test_a_webhook_whose_peer_is_refused_when_it_is_sent_reaches_nothing(manager, hook, settings):
    # saved while its network was allowed, and refused by the time it is sent (an allowlist narrowed, or
    # a name that now resolves to this machine): the connection is dropped before anything is sent
    receiver, url = hook()
    destination = f.webhook(manager, url, secret=SECRET)
    settings.OUTBOUND_ALLOWED_NETWORKS = ""
    _run(manager, destination, [f.customer(email="ann@example.com", phone="+8613800138000")])
    delivery.send_due()
    request = WebhookRequest.objects.get()
    assert receiver.received == []
    assert request.status == WebhookRequest.Status.PENDING and request.attempts == 1
    assert request.last_error.startswith("not sent: 127.0.0.1 reached 127.0.0.1")
    assert "ann@example.com" not in request.last_error and "13800138000" not in request.last_error
