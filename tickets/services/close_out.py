"""Closing work: the requesting team's rating, the retrospective, and the automatic close after 7 days."""

from __future__ import annotations

import logging
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from tickets import permissions
from tickets.models import SatisfactionRating, Ticket, TicketEvent
from tickets.services.errors import TicketConflict, TransitionError
from tickets.services.shared import _event, _lock, _require_agent
from tickets.services.workflow import ticket_transition

log = logging.getLogger(__name__)
S = Ticket.Status


@transaction.atomic
def rating_submit(*, ticket: Ticket, by: User, score: int, comment: str = "") -> SatisfactionRating:
    """The requesting team rates resolved work (once); a rating closes the ticket."""
    ticket = _lock(ticket)
    refusal = permissions.rating_refusal(by, ticket)
    if refusal:
        raise PermissionDenied(refusal)
    if ticket.status not in (S.RESOLVED, S.CLOSED):
        raise TicketConflict(_("Only resolved requests can be rated."))
    if SatisfactionRating.objects.filter(ticket=ticket).exists():
        raise TicketConflict(_("This request has already been rated."))
    if not 1 <= int(score) <= 5:
        raise DjangoValidationError({"score": _("Choose a score from 1 to 5.")})
    rating = SatisfactionRating.objects.create(
        ticket=ticket, rated_by=by, score=int(score), comment=comment.strip()
    )
    _event(ticket, by, TicketEvent.Kind.RATING, field="rating", new=score, note=comment.strip())
    audit_record(actor=by, action="ticket.rate", obj=ticket, changes={"score": int(score)})
    if ticket.status == S.RESOLVED:
        ticket_transition(ticket=ticket, to=S.CLOSED, by=None, note=_("Closed on rating."))
    return rating


@transaction.atomic
def retrospective_save(
    *, ticket: Ticket, by: User, background: str, solution: str, configuration: str = "", lessons: str = ""
):
    """Write (or rewrite) the retrospective of a resolved or closed ticket."""
    from tickets.models import Retrospective

    _require_agent(by)
    if ticket.status not in (S.RESOLVED, S.CLOSED):
        raise TicketConflict(_("Write the retrospective once the request is resolved."))
    retro, created = Retrospective.objects.update_or_create(
        ticket=ticket,
        defaults={
            "background": background,
            "solution": solution,
            "configuration": configuration,
            "lessons": lessons,
            "author": by,
        },
    )
    _event(ticket, by, TicketEvent.Kind.RETROSPECTIVE, new="created" if created else "updated", internal=True)
    audit_record(actor=by, action="ticket.retrospective", obj=ticket, changes={"created": created})
    return retro


def auto_close_resolved(*, now: datetime | None = None) -> int:
    """Close tickets resolved more than 7 days ago (the system's step)."""
    now = now or timezone.now()
    stale = Ticket.objects.filter(status=S.RESOLVED, resolved_at__lte=now - permissions.REOPEN_WINDOW).only(
        "pk"
    )
    closed = 0
    for ticket in stale.iterator(chunk_size=200):
        try:
            ticket_transition(
                ticket=ticket, to=S.CLOSED, by=None, note=_("Closed automatically after 7 days.")
            )
            closed += 1
        except TransitionError as exc:
            log.warning("auto-close skipped %s: %s", ticket.pk, exc)
    return closed
