"""How requests arrive: the web form, the API and chat become tickets with a key, SLA clocks and files."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Team, User
from accounts.selectors import managers
from accounts.services import audit_record, notify
from config.text import name_text
from config.uploads import random_storage_name, safe_display_name, validate_upload
from tickets import request_types, routing, sla
from tickets.models import Attachment, Comment, Ticket, TicketCounter, TicketEvent
from tickets.oncall.services import assign_after_hours
from tickets.services.shared import _event, _ticket_url
from tickets.services.sla_policies import _apply_due_times

log = logging.getLogger(__name__)


KEY_PREFIX = "MT"


def attachments_validate(files: Iterable[UploadedFile]) -> list[tuple[UploadedFile, str]]:
    """Check every file (size, type by content) before anything is written; raise ValidationError."""
    return [(upload, validate_upload(upload)) for upload in files]


def _attachments_store(
    ticket: Ticket, by: User, files: Sequence[tuple[UploadedFile, str]], comment: Comment | None = None
) -> list[Attachment]:
    stored = []
    for upload, content_type in files:
        attachment = Attachment(
            ticket=ticket,
            comment=comment,
            uploaded_by=by,
            original_name=safe_display_name(upload.name),
            content_type=content_type,
            size=upload.size,
        )
        attachment.file.save(random_storage_name("tickets", upload.name or ""), upload, save=False)
        attachment.save()
        _event(ticket, by, TicketEvent.Kind.ATTACHMENT, new=attachment.original_name)
        stored.append(attachment)
    return stored


def next_key() -> tuple[int, str]:
    """Allocate the next key; call inside the creating transaction (the row lock makes keys gap-free)."""
    counter, _created = TicketCounter.objects.select_for_update().get_or_create(prefix=KEY_PREFIX)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number, f"{KEY_PREFIX}-{counter.last_number}"


def round_robin_agent(ticket: Ticket | None = None) -> User | None:
    """The agent who takes `ticket` by its team's routing (round-robin, load or skill; tickets.routing), or
    None when nobody qualifies. The one assignment entry point: pass the ticket."""
    return routing.agent_for_ticket(ticket)


@transaction.atomic
def ticket_create(
    *,
    requester: User,
    title: str,
    type: str,
    urgency: str,
    description: str = "",
    channel: str = Ticket.Channel.WEB,
    campaign: Any = None,
    requested_due: date | None = None,
    files: Sequence[UploadedFile] = (),
    by: User | None = None,
    now: datetime | None = None,
    team: Team | None = None,
    request_type: Any = None,
    custom_fields: dict[str, Any] | None = None,
) -> Ticket:
    """File a request for the requester's team (or `team`, for the system's own tickets such as alert
    incidents): allocate the key, start the SLA clocks, store files."""
    if team is None and requester.team_id is None:
        raise DjangoValidationError(_("You need a team before you can file a request."), code="no_team")
    title = name_text(title)[:200]
    if not title:
        raise DjangoValidationError({"title": _("This field is required.")}, code="required")
    checked = attachments_validate(files)
    team_id = team.pk if team is not None else requester.team_id
    type, urgency, custom_fields = request_types.new_ticket_values(
        team_id=team_id,
        request_type=request_type,
        custom_fields=custom_fields,
        requester=requester,
        type=type,
        urgency=urgency,
    )
    number, key = next_key()
    now = now or timezone.now()
    ticket = Ticket(
        key=key,
        number=number,
        title=title,
        description=description,
        type=type,
        urgency=urgency,
        channel=channel,
        requester=requester,
        team_id=team.pk if team is not None else requester.team_id,
        campaign=campaign,
        requested_due=requested_due,
        request_type=request_type,
        custom_fields=custom_fields,
    )
    ticket.save()
    if now != ticket.created_at:
        Ticket.objects.filter(pk=ticket.pk).update(created_at=now)
        ticket.created_at = now
    _apply_due_times(ticket)
    sla.refresh(ticket, timezone.now())
    ticket.save(update_fields=sla.SLA_FIELDS)
    actor = by or requester
    _event(ticket, actor, TicketEvent.Kind.CREATED, new=ticket.status, note=channel)
    assign_after_hours(ticket, now)  # tickets.oncall: incidents and urgent work outside hours
    if ticket.assignee_id is None:  # tickets.routing: the request type's default assignee, or routing now
        routing.ticket_route_new(
            ticket=ticket, default_assignee=getattr(request_type, "default_assignee", None)
        )
    _attachments_store(ticket, actor, checked)
    audit_record(actor=actor, action="ticket.create", obj=ticket, changes={"key": key, "channel": channel})
    notify(
        recipients=list(managers()),
        kind="ticket.created",
        params={"key": key, "title": ticket.title},
        url=_ticket_url(ticket),
        chat=ticket.urgency == Ticket.Urgency.URGENT,
    )
    log.info("ticket %s created by %s via %s", key, actor.username, channel)
    return ticket


def intake_from_im(*, sender: str, text: str) -> Ticket:
    """A chat message becomes a ticket (channel im); the first line is the title."""
    person = User.objects.filter(is_active=True).filter(Q(username=sender) | Q(email__iexact=sender)).first()
    if person is None or not sender.strip():
        raise DjangoValidationError({"sender": _("Unknown sender.")})
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise DjangoValidationError({"text": _("The message is empty.")})
    return ticket_create(
        requester=person,
        title=lines[0][:200],
        description=text.strip(),
        type=Ticket.Type.CONSULTATION,
        urgency=Ticket.Urgency.ROUTINE,
        channel=Ticket.Channel.IM,
    )
