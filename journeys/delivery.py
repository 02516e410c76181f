"""Sending what actions wrote: webhook requests (the step groups its items into requests of up to the
destination's `batch_size` as it writes them), each request's body fixed once (so its signature and Idempotency-Key are the same on every retry),
retried with exponential backoff and dead-lettered after JOURNEYS_WEBHOOK_MAX_ATTEMPTS failures; e-mails
rendered in the customer's language and sent through Django's e-mail backend, retried the same way.

A request is claimed `FOR UPDATE SKIP LOCKED` while it is sent, so two workers never send it at once. An
item's key is sent again only with its own request, and only after that request got no 2xx answer.
"""

import hashlib
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.template import Context, Engine
from django.utils import timezone

from config import outbound
from journeys.models import Delivery, Destination, Enrolment, StepRun, WebhookRequest

log = logging.getLogger(__name__)


def max_attempts() -> int:
    return int(getattr(settings, "JOURNEYS_WEBHOOK_MAX_ATTEMPTS", 5))


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min... after the 1st, 2nd, 3rd... failure (JOURNEYS_WEBHOOK_BACKOFF_SECONDS)."""
    base = float(getattr(settings, "JOURNEYS_WEBHOOK_BACKOFF_SECONDS", 30))
    return timedelta(seconds=base * 2 ** max(attempts - 1, 0))


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the raw body with the destination's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(
    destination: Destination, request: WebhookRequest, *, session: requests.Session | None = None
) -> tuple[int | None, str]:
    body = request.body.encode()
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": request.idempotency_key,
        "X-Hub-Signature-256": signature(destination.secret, body),
        "User-Agent": "MarTech-Hub-Journeys/1",
    }
    timeout = float(getattr(settings, "JOURNEYS_WEBHOOK_TIMEOUT", 10))
    try:
        response = (session or outbound.session()).post(
            destination.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except outbound.OutboundRefused as exc:  # the peer is on this machine or a private network
        return None, str(exc)
    except requests.RequestException as exc:
        return None, type(exc).__name__
    return response.status_code, "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


def _dead_letter_request(request: WebhookRequest, reason: str) -> None:
    """A dead request's items will not be sent again: dead, and their steps counted as failed (set-based)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE journeys_delivery SET status = 'dead', last_error = %s WHERE request_id = %s",
            [reason, request.pk],
        )
        cursor.execute(
            "UPDATE journeys_steprun s SET outcome = 'failed', "
            "detail = jsonb_build_object('reason', 'dead_letter', 'delivery', d.id) "
            "FROM journeys_delivery d WHERE d.request_id = %s "
            "AND s.enrolment_id = d.enrolment_id AND s.step = d.step",
            [request.pk],
        )


def _dead_letter_items(request_items: list[Delivery], reason: str) -> None:
    """Items that will not be sent again: dead, and their steps counted as failed."""
    Delivery.objects.filter(pk__in=[d.pk for d in request_items]).update(
        status=Delivery.Status.DEAD, last_error=reason
    )
    for item in request_items:
        StepRun.objects.filter(enrolment_id=item.enrolment_id, step=item.step).update(
            outcome=StepRun.Outcome.FAILED, detail={"reason": "dead_letter", "delivery": item.pk}
        )


def senders() -> int:
    """Webhook requests sent at once (JOURNEYS_WEBHOOK_SENDERS, default 4): each sender a thread with its
    own database connection and HTTP keep-alive session, each request claimed while it is sent."""
    return max(int(getattr(settings, "JOURNEYS_WEBHOOK_SENDERS", 4)), 1)


def _send_one(now: datetime | None, sessions: list[requests.Session]) -> bool:
    """Claim the next due request (SKIP LOCKED), send it and record the answer, in one transaction; False
    when none is due. The row stays locked while it is sent, so no other sender sends it at the same time,
    and an answer is recorded with the request, so a 2xx request is never sent again."""
    moment = now or timezone.now()
    with transaction.atomic():
        request = (
            WebhookRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=WebhookRequest.Status.PENDING, next_attempt_at__lte=moment)
            .select_related("destination")
            .order_by("next_attempt_at", "pk")
            .first()
        )
        if request is None:
            return False
        if not sessions:  # made when there is something to send (an idle tick makes none)
            sessions.append(outbound.session())
        status, error = _post(request.destination, request, session=sessions[0])
        request.attempts += 1
        request.last_status = status
        request.last_error = error[:500]
        if not error:
            request.status = WebhookRequest.Status.DELIVERED
            request.delivered_at = moment
            # delivered: the body (which may hold personal values a purpose allowed) is no longer needed
            request.body = ""  # its items stay `grouped`: the request's status is theirs
        elif request.attempts >= max_attempts():
            request.status = WebhookRequest.Status.DEAD
            _dead_letter_request(request, error[:500])
            log.warning("webhook request %s dead after %s attempts: %s", request.pk, request.attempts, error)
        else:
            request.next_attempt_at = moment + backoff(request.attempts)
        request.save()
    return True


def _send_loop(now: datetime | None, limit: int) -> int:
    tried = 0
    sessions: list[requests.Session] = []
    try:
        while tried < limit and _send_one(now, sessions):
            tried += 1
    finally:
        for session in sessions:
            session.close()
    return tried


def _send_loop_thread(now: datetime | None, limit: int) -> int:
    try:
        return _send_loop(now, limit)
    finally:
        connection.close()  # the thread's own connection


def requests_send(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Send due webhook requests, up to `senders()` at once; returns how many were tried. Inside a
    transaction (a caller's, or a test's) they are sent one after another on the caller's connection:
    another connection would not see what that transaction wrote."""
    workers = senders()
    if workers <= 1 or connection.in_atomic_block:
        return _send_loop(now, limit)
    due = len(
        WebhookRequest.objects.filter(
            status=WebhookRequest.Status.PENDING, next_attempt_at__lte=now or timezone.now()
        ).values("pk")[: workers * 2]
    )
    if due == 0:
        return 0
    if due == 1:
        return _send_loop(now, limit)
    workers = min(workers, due)
    share = -(-limit // workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="journeys-send") as pool:
        return sum(pool.map(lambda _n: _send_loop_thread(now, share), range(workers)))


def email_render(delivery: Delivery) -> tuple[str, str, str] | None:
    """(address, subject, body) in the customer's language (else the site's, else the first there is)."""
    enrolment = Enrolment.objects.select_related("customer").get(pk=delivery.enrolment_id)
    customer = enrolment.customer
    if not customer.email:
        return None
    texts = delivery.email_template.texts or {}
    language = delivery.payload.get("language", settings.LANGUAGE_CODE)
    text = texts.get(language) or texts.get(settings.LANGUAGE_CODE) or next(iter(texts.values()), None)
    if text is None:
        return None
    engine = Engine.get_default()
    context = Context({"customer": customer}, autoescape=False)
    subject = engine.from_string(text.get("subject", "")).render(context).strip().replace("\n", " ")
    body = engine.from_string(text.get("body", "")).render(context)
    return customer.email, subject, body


def emails_send(*, now: datetime | None = None, limit: int = 500) -> int:
    """Send due e-mails (each claimed while it is sent); returns how many were tried."""
    tried = 0
    for _ in range(limit):
        moment = now or timezone.now()
        with transaction.atomic():
            delivery = (
                Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(
                    channel=Delivery.Channel.EMAIL,
                    status=Delivery.Status.PENDING,
                    next_attempt_at__lte=moment,
                )
                .select_related("email_template")
                .order_by("next_attempt_at", "pk")
                .first()
            )
            if delivery is None:
                break
            delivery.attempts += 1
            try:
                message = email_render(delivery)
                if message is None:
                    delivery.status = Delivery.Status.DEAD
                    delivery.last_error = "no_text_or_address"
                else:
                    address, subject, body = message
                    send_mail(subject, body, None, [address])
                    delivery.status = Delivery.Status.SENT
                    delivery.sent_at = moment
            except (OSError, ValueError) as exc:  # SMTP errors are OSErrors; a bad template a ValueError
                delivery.last_error = type(exc).__name__
                if delivery.attempts >= max_attempts():
                    delivery.status = Delivery.Status.DEAD
                else:
                    delivery.next_attempt_at = moment + backoff(delivery.attempts)
            delivery.save()
            if delivery.status == Delivery.Status.DEAD:
                _dead_letter_items([delivery], delivery.last_error)
            tried += 1
    return tried


def send_due(*, now: datetime | None = None) -> dict[str, int]:
    """Send due webhook requests (the step that wrote their items made them) and e-mails."""
    return {
        "requests_tried": requests_send(now=now),
        "emails_tried": emails_send(now=now),
    }
