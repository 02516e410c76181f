"""Action steps for a group of enrolments at the same step, set-based where it can be: guards first
(quiet hours defer the whole group, then consent and the frequency cap skip whom they stop), then the
action. Webhooks and e-mails are written as deliveries in the step's transaction and sent after it
commits (delivery.py), so a step's effect and its record commit together or not at all."""

import json
import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.urls import reverse

from accounts.models import User
from accounts.services import notify
from config import binary_sql as bulk
from crm_tags.manual_members import tag_members_change
from crm_tags.models import Customer, Tag
from journeys import guards, templating
from journeys.definition import Node
from journeys.models import Delivery, Destination, EmailTemplate, Enrolment, StepRun

if TYPE_CHECKING:
    from journeys.engine import Runner

log = logging.getLogger(__name__)
ACTED, SKIPPED, FAILED = StepRun.Outcome.ACTED, StepRun.Outcome.SKIPPED, StepRun.Outcome.FAILED


def idempotency_key(enrolment: Enrolment, step: str) -> str:
    """`<journey>-<enrolment>-<step>`: the same for every attempt of the same step of the same enrolment."""
    return f"{enrolment.journey_id}-{enrolment.pk}-{step}"


def with_customers(group: list[Enrolment]) -> list[Enrolment]:
    """Read the group's customers in one query (the claim does not: a webhook with a fixed template never
    needs them) and attach them, so `enrolment.customer` costs nothing per row."""
    missing = [
        e
        for e in group
        if (not Enrolment.customer.is_cached(e) if isinstance(e, Enrolment) else e.customer is None)
    ]
    if missing:
        customers = Customer.objects.in_bulk({e.customer_id for e in missing})
        for enrolment in missing:
            enrolment.customer = customers[enrolment.customer_id]
    return group


def _guard(
    runner: "Runner",
    node: Node,
    group: list[Enrolment],
    *,
    purpose: str,
    channel: str,
    customer_facing: bool,
) -> list[Enrolment]:
    """Apply the guards; returns the enrolments that may be acted on now (the others are held or skipped)."""
    if customer_facing:
        until = guards.quiet_until(runner.now)
        if until is not None:
            for enrolment in group:
                runner.hold(enrolment, until)  # deferred, not skipped: the step runs in the morning
            return []
    allowed = group
    if purpose:
        ok = guards.consented([e.customer_id for e in group], purpose)
        allowed = []
        for enrolment in group:
            if enrolment.customer_id in ok:
                allowed.append(enrolment)
            else:
                runner.advance(enrolment, node, SKIPPED, {"reason": "no_consent", "purpose": purpose})
    if customer_facing and allowed:
        taken = guards.cap_take([e.customer_id for e in allowed], channel, runner.now)
        capped = [e for e in allowed if e.customer_id not in taken]
        for enrolment in capped:
            runner.advance(enrolment, node, SKIPPED, {"reason": "frequency_cap", "channel": channel})
        allowed = [e for e in allowed if e.customer_id in taken]
    return allowed


def run_webhook(runner: "Runner", node: Node, group: list[Enrolment]) -> None:
    """Guards (each one statement for the group), then one statement writing the group's webhook items and
    their requests (deliveries_insert): the customer's external id is joined in SQL; a template without
    placeholders is one constant; one with placeholders is rendered per customer and passed as an array."""
    destination = Destination.objects.filter(pk=node.spec.get("destination")).first()
    if destination is None:
        for enrolment in group:
            runner.advance(enrolment, node, FAILED, {"reason": "destination_missing"})
        return
    channel = guards.CHANNEL_OF_PURPOSE.get(destination.purpose, "webhook")
    allowed = _guard(
        runner,
        node,
        group,
        purpose=destination.purpose,
        channel=channel,
        customer_facing=destination.customer_facing,
    )
    if not allowed:
        return
    template = node.spec.get("template", {})
    if templating.has_placeholders(template):
        personal = bool(destination.purpose)
        with_customers(allowed)
        payloads = [
            json.dumps(
                templating.render(template, e.customer, personal_allowed=personal), cls=DjangoJSONEncoder
            )
            for e in allowed
        ]
        constant = None
    else:
        payloads, constant = None, json.dumps(template)
    deliveries_insert(
        channel=Delivery.Channel.WEBHOOK,
        destination_id=destination.pk,
        email_template_id=None,
        step=node.id,
        enrolments=allowed,
        payloads=payloads,
        constant=constant,
        now=runner.now,
        batch_size=destination.batch_size,
    )
    acted = {"destination": destination.pk}  # one detail for the group: encoded once when saved
    for enrolment in allowed:
        runner.advance(enrolment, node, ACTED, acted)
    runner.deliveries_made = True


def deliveries_insert(
    *,
    channel: str,
    destination_id: int | None,
    email_template_id: int | None,
    step: str,
    enrolments: list[Enrolment],
    payloads: list[str] | None,
    constant: str | None,
    now: Any,
    batch_size: int = 1,
) -> int:
    """One statement writing the deliveries of `enrolments` at `step`, keyed `<journey>-<enrolment>-<step>`
    (unique: a second write of a key fails the batch instead of sending twice); returns how many.

    A webhook item's payload is the Contract's item (`idempotency_key`, `journey`, `step`,
    `customer.external_id`, `payload`: the rendered template from `payloads`, JSON per enrolment, or
    `constant`), and the items are grouped at once, in enrolment order, into requests of up to `batch_size`
    (each with its body fixed and a random Idempotency-Key), all in the step's transaction: grouping them
    later would rewrite every item once more. A webhook item is written `grouped`, its own payload empty:
    its request's body holds it (emptied when delivered) and its request's status is its own (an item is
    written again only when its request dies). An e-mail's payload is `payloads` as is."""
    arrays = [
        [e.pk for e in enrolments],
        [e.journey_id for e in enrolments],
        [e.customer_id for e in enrolments],
        payloads if payloads is not None else [None] * len(enrolments),
    ]
    # the key is idempotency_key()'s `<journey>-<enrolment>-<step>`, made in SQL
    source = (
        "FROM (SELECT u.*, u.journey_id || '-' || u.id || '-' || %b::text AS key "
        "FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::text[]) "
        "AS u(id, journey_id, customer_id, payload)) u"
    )
    columns = (
        "INSERT INTO journeys_delivery (channel, destination_id, email_template_id, request_id, enrolment_id, "
        "step, idempotency_key, payload, status, attempts, next_attempt_at, last_error, created_at, sent_at) "
    )
    with bulk.cursor() as cursor:
        if channel != Delivery.Channel.WEBHOOK:
            cursor.execute(
                columns + "SELECT %b::text, NULL, %b::bigint, NULL, u.id, %b::text, u.key, u.payload::jsonb, "  # noqa: S608
                f"'pending', 0, %b::timestamptz, '', %b::timestamptz, NULL {source} ORDER BY u.id",
                [str(channel), email_template_id, step, now, now, step, *arrays],
            )
            return cursor.rowcount
        cursor.execute(
            "WITH items AS (SELECT u.id, u.key, jsonb_build_object('idempotency_key', u.key, "  # noqa: S608
            "'journey', u.journey_id, 'step', %b::text, 'customer', jsonb_build_object('external_id', "
            "c.external_id), 'payload', coalesce(u.payload::jsonb, %b::jsonb)) AS payload, "
            f"(row_number() OVER (ORDER BY u.id) - 1) / %b::int AS chunk {source} "
            "JOIN crm_tags_customer c ON c.id = u.customer_id), "
            "bodies AS (SELECT chunk, replace(gen_random_uuid()::text, '-', '') AS key, "
            "'{\"deliveries\":[' || string_agg(payload::text, ',' ORDER BY id) || ']}' AS body "
            "FROM items GROUP BY chunk), "
            "made AS (INSERT INTO journeys_webhookrequest (destination_id, idempotency_key, body, status, "
            "attempts, next_attempt_at, last_error, created_at) "
            "SELECT %b::bigint, key, body, 'pending', 0, %b::timestamptz, '', %b::timestamptz FROM bodies ORDER BY chunk "
            "RETURNING id, idempotency_key) "
            + columns
            + "SELECT 'webhook', %b::bigint, NULL, made.id, i.id, %b::text, i.key, '{}'::jsonb, 'grouped', 0, "
            "%b::timestamptz, '', %b::timestamptz, NULL "
            "FROM items i JOIN bodies b ON b.chunk = i.chunk JOIN made ON made.idempotency_key = b.key "
            "ORDER BY i.id",
            [
                step,
                constant,
                max(batch_size, 1),
                step,
                *arrays,
                destination_id,
                now,
                now,
                destination_id,
                step,
                now,
                now,
            ],
        )
        return cursor.rowcount


def run_email(runner: "Runner", node: Node, group: list[Enrolment]) -> None:
    template = EmailTemplate.objects.filter(pk=node.spec.get("template")).first()
    if template is None:
        for enrolment in group:
            runner.advance(enrolment, node, FAILED, {"reason": "template_missing"})
        return
    with_address = []
    for enrolment in with_customers(group):
        if enrolment.customer.email:
            with_address.append(enrolment)
        else:
            runner.advance(enrolment, node, SKIPPED, {"reason": "no_address"})
    allowed = _guard(
        runner, node, with_address, purpose=template.purpose, channel="email", customer_facing=True
    )
    if not allowed:
        return
    languages = [
        json.dumps({"language": str((e.customer.attributes or {}).get("language") or settings.LANGUAGE_CODE)})
        for e in allowed
    ]
    deliveries_insert(
        channel=Delivery.Channel.EMAIL,
        destination_id=None,
        email_template_id=template.pk,
        step=node.id,
        enrolments=allowed,
        payloads=languages,
        constant=None,
        now=runner.now,
    )
    acted = {"template": template.pk}
    for enrolment in allowed:
        runner.advance(enrolment, node, ACTED, acted)
    runner.deliveries_made = True


def run_notify(runner: "Runner", node: Node, group: list[Enrolment]) -> None:
    if "team" in node.spec:
        recipients = list(User.objects.filter(team__name=node.spec["team"], is_active=True))
    else:
        recipients = list(User.objects.filter(username=node.spec.get("user"), is_active=True))
    if not recipients:
        for enrolment in group:
            runner.advance(enrolment, node, FAILED, {"reason": "no_recipient"})
        return
    for enrolment in with_customers(group):
        journey = runner.journeys[enrolment.journey_id]
        notify(
            recipients=recipients,
            kind="journey.notify",
            params={
                "journey": journey.name,
                "customer": enrolment.customer.external_id,
                "text": node.spec.get("message", ""),
            },
            url=reverse("journeys-enrolments", args=[journey.pk])
            + f"?customer={enrolment.customer.external_id}",
            email=False,
        )
        runner.advance(enrolment, node, ACTED, {"recipients": len(recipients)})


def run_ticket(runner: "Runner", node: Node, group: list[Enrolment]) -> None:
    from tickets.models import Ticket
    from tickets.services import ticket_create

    for enrolment in with_customers(group):
        journey = runner.journeys[enrolment.journey_id]
        customer = enrolment.customer
        title = templating.render(node.spec["title"], customer, personal_allowed=False)
        description = templating.render(node.spec.get("description", ""), customer, personal_allowed=False)
        description = (
            f"{description}\n\nJourney {journey.pk} ({journey.name}), customer {customer.external_id}".strip()
        )
        try:
            with transaction.atomic():
                ticket = ticket_create(
                    requester=journey.owner,
                    title=str(title),
                    type=node.spec.get("type", Ticket.Type.DATA_SUPPORT),
                    urgency=node.spec.get("urgency", Ticket.Urgency.ROUTINE),
                    description=description,
                    channel=Ticket.Channel.API,
                    campaign=journey.campaign,
                )
        except ValidationError as exc:
            log.warning(
                "journey %s: ticket for enrolment %s refused: %s", journey.pk, enrolment.pk, exc.messages
            )
            runner.advance(enrolment, node, FAILED, {"reason": "ticket_refused"})
            continue
        runner.advance(enrolment, node, ACTED, {"ticket": ticket.key})


def run_tag(runner: "Runner", node: Node, group: list[Enrolment]) -> None:
    tag = Tag.objects.filter(slug=node.spec.get("tag"), kind=Tag.Kind.MANUAL).first()
    if tag is None:
        for enrolment in group:
            runner.advance(enrolment, node, FAILED, {"reason": "tag_missing"})
        return
    ids = [e.customer_id for e in group]
    if node.action == "tag_add":
        tag_members_change(tag=tag, add=ids, now=runner.now)
    else:
        tag_members_change(tag=tag, remove=ids, now=runner.now)
    for enrolment in group:
        runner.advance(enrolment, node, ACTED, {"tag": tag.slug})


def run_touchpoint(runner: "Runner", node: Node, group: list[Enrolment]) -> None:
    """A touchpoint of the journey's campaign per customer (keyed by external id, as imported ones are), so
    attribution credits the channel; written in the step's transaction, so once per enrolment and step."""
    from campaigns.models import Touchpoint

    touchpoints = []
    for enrolment in with_customers(group):
        campaign_id = runner.journeys[enrolment.journey_id].campaign_id
        if campaign_id is None:  # the campaign was deleted after the journey was activated
            runner.advance(enrolment, node, FAILED, {"reason": "campaign_missing"})
            continue
        touchpoints.append(
            Touchpoint(
                campaign_id=campaign_id,
                customer_external_id=enrolment.customer.external_id,
                occurred_at=runner.now,
                channel=node.spec["channel"],
            )
        )
        runner.advance(enrolment, node, ACTED, {"campaign": campaign_id, "channel": node.spec["channel"]})
    Touchpoint.objects.bulk_create(touchpoints)


HANDLERS = {
    "webhook": run_webhook,
    "email": run_email,
    "notify": run_notify,
    "ticket": run_ticket,
    "tag_add": run_tag,
    "tag_remove": run_tag,
    "touchpoint": run_touchpoint,
}


def run_action(runner: "Runner", node: Node, group: list[Enrolment]) -> None:
    HANDLERS[node.action](runner, node, group)
