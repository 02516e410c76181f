"""Action steps for a group of enrolments at the same step, set-based where it can be: guards first
(quiet hours defer the whole group, then consent and the frequency cap skip whom they stop), then the
action. Webhooks and e-mails are written as deliveries in the step's transaction and sent after it
commits (delivery.py), so a step's effect and its record commit together or not at all."""

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from accounts.models import User
from accounts.services import notify
from crm_tags.manual_members import tag_members_change
from crm_tags.models import Tag
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
    template = node.spec.get("template", {})
    deliveries = []
    for enrolment in allowed:
        key = idempotency_key(enrolment, node.id)
        payload = templating.render(template, enrolment.customer, personal_allowed=bool(destination.purpose))
        deliveries.append(
            Delivery(
                channel=Delivery.Channel.WEBHOOK,
                destination=destination,
                enrolment=enrolment,
                step=node.id,
                idempotency_key=key,
                payload={
                    "idempotency_key": key,
                    "journey": enrolment.journey_id,
                    "step": node.id,
                    "customer": {"external_id": enrolment.customer.external_id},
                    "payload": payload,
                },
                next_attempt_at=runner.now,
                created_at=runner.now,
            )
        )
        runner.advance(enrolment, node, ACTED, {"destination": destination.pk})
    Delivery.objects.bulk_create(deliveries)
    if deliveries:
        runner.deliveries_made = True


def run_email(runner: "Runner", node: Node, group: list[Enrolment]) -> None:
    template = EmailTemplate.objects.filter(pk=node.spec.get("template")).first()
    if template is None:
        for enrolment in group:
            runner.advance(enrolment, node, FAILED, {"reason": "template_missing"})
        return
    with_address = []
    for enrolment in group:
        if enrolment.customer.email:
            with_address.append(enrolment)
        else:
            runner.advance(enrolment, node, SKIPPED, {"reason": "no_address"})
    allowed = _guard(
        runner, node, with_address, purpose=template.purpose, channel="email", customer_facing=True
    )
    deliveries = []
    for enrolment in allowed:
        language = (enrolment.customer.attributes or {}).get("language") or settings.LANGUAGE_CODE
        deliveries.append(
            Delivery(
                channel=Delivery.Channel.EMAIL,
                email_template=template,
                enrolment=enrolment,
                step=node.id,
                idempotency_key=idempotency_key(enrolment, node.id),
                payload={"language": str(language)},
                next_attempt_at=runner.now,
                created_at=runner.now,
            )
        )
        runner.advance(enrolment, node, ACTED, {"template": template.pk})
    Delivery.objects.bulk_create(deliveries)
    if deliveries:
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
    for enrolment in group:
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

    for enrolment in group:
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
    for enrolment in group:
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
