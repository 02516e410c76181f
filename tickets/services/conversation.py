"""The conversation on a ticket: replies, internal notes, mentions and watchers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record, notify
from tickets import permissions
from tickets.models import Comment, Ticket, TicketEvent
from tickets.services.intake import _attachments_store, attachments_validate
from tickets.services.shared import _event, _lock, _requester_side, _support_side, _ticket_url
from tickets.services.workflow import _mark_first_response, ticket_transition

S = Ticket.Status


@transaction.atomic
def comment_add(
    *, ticket: Ticket, by: User, body: str, internal: bool = False, files: Sequence[UploadedFile] = ()
) -> Comment:
    """A public reply or an internal note. An agent's first public reply stops the first-response clock;
    the requesting team's reply to a question puts the ticket back where it was."""
    if not permissions.can_view(by, ticket):
        raise PermissionDenied
    if internal and not permissions.can_see_internal(by):
        raise PermissionDenied(_("Only support staff may write internal notes."))
    if not body.strip():
        raise DjangoValidationError({"body": _("Write something first.")})
    checked = attachments_validate(files)
    ticket = _lock(ticket)
    comment = Comment.objects.create(ticket=ticket, author=by, body=body.strip(), internal=internal)
    kind = TicketEvent.Kind.NOTE if internal else TicketEvent.Kind.COMMENT
    _event(ticket, by, kind, internal=internal)
    _attachments_store(ticket, by, checked, comment=comment)
    now = timezone.now()
    sides = permissions.sides_of(by, ticket)
    if (
        not internal
        and permissions.AGENT in sides
        and by.pk != ticket.requester_id
        and ticket.first_response_at is None
    ):
        _mark_first_response(ticket, now)
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
    audit_record(
        actor=by,
        action="ticket.note" if internal else "ticket.reply",
        obj=ticket,
        changes={"comment": comment.pk},
    )
    params = {"key": ticket.key, "text": comment.body}
    if internal:
        # internal notes go to support staff only, never to the requester or watchers
        notify(
            recipients=_support_side(ticket, by), kind="ticket.note", params=params, url=_ticket_url(ticket)
        )
    elif permissions.AGENT in sides and by.pk != ticket.requester_id:
        notify(
            recipients=_requester_side(ticket, by),
            kind="ticket.reply",
            params=params,
            url=_ticket_url(ticket),
        )
    else:
        notify(
            recipients=_support_side(ticket, by), kind="ticket.reply", params=params, url=_ticket_url(ticket)
        )
    _notify_mentions(ticket, by, comment)
    if not internal and ticket.status == S.WAITING_ON_REQUESTER and permissions.TEAM in sides:
        ticket_transition(ticket=ticket, to=ticket.previous_status, by=by, note=_("The requester replied."))
    return comment


MENTION_RE = re.compile(r"(?<![\w@.])@([\w.+-]{2,150})")


def _notify_mentions(ticket: Ticket, by: User, comment: Comment) -> None:
    """@username tells that person, when they may read the comment (internal notes: staff only)."""
    names = set(MENTION_RE.findall(comment.body))
    if not names:
        return
    people = [
        person
        for person in User.objects.filter(username__in=names, is_active=True).exclude(pk=by.pk)
        if permissions.can_view(person, ticket)
        and (not comment.internal or permissions.can_see_internal(person))
    ]
    notify(
        recipients=people,
        kind="ticket.mention",
        params={"name": str(by), "key": ticket.key, "text": comment.body},
        url=_ticket_url(ticket),
    )


@transaction.atomic
def watcher_toggle(*, ticket: Ticket, user: User) -> bool:
    """Follow or stop following a ticket; returns whether the person now watches it."""
    if not permissions.can_view(user, ticket):
        raise PermissionDenied
    if ticket.watchers.filter(pk=user.pk).exists():
        ticket.watchers.remove(user)
        return False
    ticket.watchers.add(user)
    return True
