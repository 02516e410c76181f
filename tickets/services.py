"""Writes for tickets: each one a transaction that validates, saves, records the audit trail and
notifies after commit. Pages, the API, tasks and scripts all go through these functions."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import managers, support_agents
from accounts.services import audit_record, notify
from config.concurrency import EditConflict, check_version
from config.text import name_text
from config.uploads import random_storage_name, safe_display_name, validate_upload
from tickets import permissions, sla
from tickets.models import (
    AssignmentCursor,
    Attachment,
    BusinessCalendar,
    Comment,
    Holiday,
    SatisfactionRating,
    SavedView,
    SlaPolicy,
    SlaTypeCalendar,
    SolutionPlan,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketLink,
    WorkingDay,
    WorkingHours,
)

log = logging.getLogger(__name__)
S = Ticket.Status
KEY_PREFIX = "MT"


class TransitionError(Exception):
    """A status change that cannot happen; subclasses say why (409 / 403 / 400)."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class TransitionNotAllowed(TransitionError):
    """No such step from the current status (HTTP 409)."""


class TransitionForbidden(TransitionError):
    """The step exists, but this person's role may not take it (HTTP 403)."""


class TransitionDataMissing(TransitionError):
    """The step needs data that is missing or wrong (HTTP 400); `errors` maps field → message."""


class TicketConflict(Exception):
    """The change conflicts with the ticket's current state (HTTP 409)."""


# --- helpers --------------------------------------------------------------------------------------


def _event(
    ticket: Ticket,
    actor: User | None,
    kind: str,
    *,
    field: str = "",
    old: Any = "",
    new: Any = "",
    note: str = "",
    internal: bool = False,
) -> TicketEvent:
    return TicketEvent.objects.create(
        ticket=ticket,
        actor=actor,
        kind=kind,
        field=field,
        old="" if old is None else str(old),
        new="" if new is None else str(new),
        note=note,
        internal=internal,
    )


def _ticket_url(ticket: Ticket) -> str:
    return ticket.get_absolute_url()


def _requester_side(ticket: Ticket, exclude: User | None) -> list[User]:
    people = [ticket.requester, *ticket.watchers.all()]
    return [p for p in people if exclude is None or p.pk != exclude.pk]


def _support_side(ticket: Ticket, exclude: User | None) -> list[User]:
    people = [ticket.assignee] if ticket.assignee_id else list(managers())
    return [p for p in people if p is not None and (exclude is None or p.pk != exclude.pk)]


def _lock(ticket: Ticket) -> Ticket:
    return (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("requester", "assignee", "team")
        .get(pk=ticket.pk)
    )


def _targets(ticket: Ticket) -> sla.Targets:
    """The targets and calendar for the ticket's urgency and type."""
    targets = sla.load_targets(ticket.urgency)
    if ticket.urgency not in targets:
        sla_defaults_ensure()
        targets = sla.load_targets(ticket.urgency)
    return targets[ticket.urgency].for_type(ticket.type)


DEFAULT_POLICIES = [("urgent", 30, 120), ("routine", 240, 3 * 540), ("planned", 2 * 540, 20 * 540)]
OFFICE_CALENDAR, ROUND_THE_CLOCK_CALENDAR = "Shanghai office", "Round the clock"


@transaction.atomic
def sla_defaults_ensure() -> None:
    """The design's default calendars (Mon–Fri 09:00–18:00 Asia/Shanghai, and round the clock) and
    policies, when missing: urgent work runs round the clock, the rest on office hours."""
    import datetime as dt

    office, created = BusinessCalendar.objects.get_or_create(
        name=OFFICE_CALENDAR, defaults={"timezone": "Asia/Shanghai"}
    )
    if created:
        WorkingHours.objects.bulk_create(
            WorkingHours(calendar=office, weekday=day, start=dt.time(9), end=dt.time(18)) for day in range(5)
        )
    always, created = BusinessCalendar.objects.get_or_create(
        name=ROUND_THE_CLOCK_CALENDAR, defaults={"timezone": "Asia/Shanghai"}
    )
    if created:
        WorkingHours.objects.bulk_create(
            WorkingHours(calendar=always, weekday=day, start=dt.time(0), end=dt.time(0)) for day in range(7)
        )
    for urgency, first, resolution in DEFAULT_POLICIES:
        SlaPolicy.objects.get_or_create(
            urgency=urgency,
            defaults={
                "first_response_minutes": first,
                "resolution_minutes": resolution,
                "calendar": always if urgency == Ticket.Urgency.URGENT else office,
            },
        )


def _require_agent(user: User) -> None:
    if not permissions.can_work(user):
        raise PermissionDenied(_("Only support staff may do this."))


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


def round_robin_agent() -> User | None:
    """The next available agent of the support team after the one chosen last (locks the cursor)."""
    cursor, _created = AssignmentCursor.objects.select_for_update().get_or_create(name="support")
    candidates = list(
        support_agents()
        .filter(is_available=True, team__is_support=True)
        .order_by("pk")
        .only("pk", "username")
    )
    if not candidates:
        return None
    last = cursor.last_user_id or 0
    chosen = next((agent for agent in candidates if agent.pk > last), candidates[0])
    cursor.last_user = chosen
    cursor.save(update_fields=["last_user"])
    return User.objects.get(pk=chosen.pk)


# --- create ---------------------------------------------------------------------------------------


def _apply_due_times(ticket: Ticket) -> None:
    """The ticket's SLA deadlines for its urgency and type; one that has no deadline (a target above the
    limit stored before it existed, or a calendar without working time left) is refused naming the
    urgency, and the caller's transaction rolls back whatever it wrote."""
    try:
        sla.apply_due_times(ticket, _targets(ticket))
    except sla.CalendarWithoutHours as exc:
        raise DjangoValidationError(
            {
                "urgency": _(
                    "The SLA of this urgency has no deadline on its calendar. Ask a manager to correct the "
                    "SLA policy."
                )
            },
            code="sla_out_of_reach",
        ) from exc


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
) -> Ticket:
    """File a request for the requester's team: allocate the key, start the SLA clocks, store files."""
    if requester.team_id is None:
        raise DjangoValidationError(_("You need a team before you can file a request."), code="no_team")
    title = name_text(title)[:200]
    if not title:
        raise DjangoValidationError({"title": _("This field is required.")}, code="required")
    checked = attachments_validate(files)
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
        team_id=requester.team_id,
        campaign=campaign,
        requested_due=requested_due,
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
    _attachments_store(ticket, actor, checked)
    audit_record(actor=actor, action="ticket.create", obj=ticket, changes={"key": key, "channel": channel})
    notify(
        recipients=list(managers()),
        verb="ticket.created",
        title=_("New request %(key)s: %(title)s") % {"key": key, "title": ticket.title},
        url=_ticket_url(ticket),
        chat=ticket.urgency == Ticket.Urgency.URGENT,
    )
    log.info("ticket %s created by %s via %s", key, actor.username, channel)
    return ticket


# --- the state machine ----------------------------------------------------------------------------


def _check_transition(ticket: Ticket, to: str, by: User | None) -> None:
    allowed = permissions.edge_sides(ticket, to)
    if allowed is None:
        raise TransitionNotAllowed(
            _("A request cannot go from %(old)s to %(new)s.")
            % {"old": S(ticket.status).label, "new": S(to).label if to in S.values else to}
        )
    if not (allowed & permissions.sides_of(by, ticket)):
        raise TransitionForbidden(_("You may not move this request to %(new)s.") % {"new": S(to).label})
    if ticket.status == S.RESOLVED and to == S.IN_PROGRESS and not permissions.reopen_window_open(ticket):
        raise TransitionNotAllowed(_("A request can be reopened only within 7 days of being resolved."))


def _check_data(
    ticket: Ticket, to: str, *, note: str, reason: str, feasibility: str, assignee: User | None
) -> None:
    errors: dict[str, str] = {}
    if ticket.status == S.NEW and to == S.TRIAGED:
        if feasibility not in Ticket.Feasibility.values:
            errors["feasibility"] = _("Choose feasible, needs_external or not_feasible.")
        if assignee is not None and not support_agents().filter(pk=assignee.pk).exists():
            errors["assignee"] = _("The assignee must be a member of the support staff.")
    if to == S.REJECTED and not reason.strip():
        errors["reason"] = _("Say why the request is rejected.")
    if to == S.WAITING_ON_REQUESTER and not note.strip():
        errors["note"] = _("Write the question for the requester.")
    if ticket.status == S.AWAITING_ACCEPTANCE and to == S.IN_PROGRESS and not reason.strip():
        errors["reason"] = _("Say what is missing or wrong.")
    if ticket.status == S.RESOLVED and to == S.IN_PROGRESS and not reason.strip():
        errors["reason"] = _("Say why the request is reopened.")
    if (
        ticket.status == S.ANALYSIS
        and to == S.IN_PROGRESS
        and (ticket.type == Ticket.Type.FEATURE or ticket.is_complex)
    ):
        plan = SolutionPlan.objects.filter(ticket=ticket).first()
        if plan is None or plan.status != SolutionPlan.Status.APPROVED:
            errors["plan"] = _("Features and complex requests need an approved solution plan first.")
    if errors:
        raise TransitionDataMissing(next(iter(errors.values())), errors)


@transaction.atomic
def ticket_transition(
    *,
    ticket: Ticket,
    to: str,
    by: User | None,
    note: str = "",
    reason: str = "",
    feasibility: str = "",
    feasibility_note: str = "",
    assignee: User | None = None,
) -> Ticket:
    """Move a ticket along the workflow (by=None is the system). Raises TransitionNotAllowed (409),
    TransitionForbidden (403) or TransitionDataMissing (400)."""
    ticket = _lock(ticket)
    _check_transition(ticket, to, by)
    _check_data(ticket, to, note=note, reason=reason, feasibility=feasibility, assignee=assignee)
    now = timezone.now()
    old = ticket.status
    fields = {"status", "updated_at", *sla.SLA_FIELDS}
    if old == S.NEW and to == S.TRIAGED:
        old_feasibility = ticket.feasibility
        ticket.feasibility = feasibility
        ticket.feasibility_note = feasibility_note or ticket.feasibility_note
        fields |= {"feasibility", "feasibility_note"}
        _event(ticket, by, TicketEvent.Kind.FIELD, field="feasibility", old=old_feasibility, new=feasibility)
        chosen = assignee or (ticket.assignee if ticket.assignee_id else None) or round_robin_agent()
        if chosen is not None and chosen.pk != ticket.assignee_id:
            _event(
                ticket, by, TicketEvent.Kind.ASSIGN, field="assignee", old=ticket.assignee or "", new=chosen
            )
            ticket.assignee = chosen
            fields.add("assignee")
    if to == S.WAITING_ON_REQUESTER:
        ticket.previous_status = old
        fields.add("previous_status")
        sla.pause(ticket, now)
    if old == S.WAITING_ON_REQUESTER:
        ticket.previous_status = ""
        fields.add("previous_status")
        sla.resume(ticket, _targets(ticket), now)
    if to == S.RESOLVED:
        ticket.resolved_at = now
        fields.add("resolved_at")
        if ticket.first_response_at is None:
            # resolved without a public reply: the resolution is the first response (docs/tickets.md)
            ticket.first_response_at = now
            fields.add("first_response_at")
            _event(
                ticket,
                None,
                TicketEvent.Kind.SLA,
                field="first_response_at",
                new=now.isoformat(),
                note="resolved without a reply",
            )
    if to == S.CLOSED:
        ticket.closed_at = now
        fields.add("closed_at")
    if old == S.RESOLVED and to == S.IN_PROGRESS:
        ticket.resolved_at = None
        fields.add("resolved_at")
    ticket.status = to
    sla.refresh(ticket, now)
    ticket.save(update_fields=sorted(fields))
    _event(
        ticket, by, TicketEvent.Kind.STATUS, field="status", old=old, new=to, note=(reason or note).strip()
    )
    if to == S.WAITING_ON_REQUESTER:
        Comment.objects.create(ticket=ticket, author=by, body=note.strip(), internal=False)
        if ticket.first_response_at is None and by is not None and by.pk != ticket.requester_id:
            _mark_first_response(ticket, now)
    audit_record(actor=by, action="ticket.transition", obj=ticket, changes={"status": [old, to]})
    _notify_transition(ticket, by, old, to, reason or note)
    log.info("ticket %s %s -> %s by %s", ticket.key, old, to, by.username if by else "system")
    return ticket


def _notify_transition(ticket: Ticket, by: User | None, old: str, to: str, text: str) -> None:
    title = _("%(key)s is now %(status)s") % {"key": ticket.key, "status": S(to).label}
    sides = permissions.sides_of(by, ticket)
    if permissions.TEAM in sides and permissions.AGENT not in sides:
        recipients = _support_side(ticket, by)
    else:
        recipients = _requester_side(ticket, by)
        if to == S.TRIAGED and ticket.assignee_id and (by is None or ticket.assignee_id != by.pk):
            recipients.append(ticket.assignee)
    notify(recipients=recipients, verb=f"ticket.{to}", title=title, body=text, url=_ticket_url(ticket))


def _mark_first_response(ticket: Ticket, now: datetime) -> None:
    ticket.first_response_at = now
    sla.refresh(ticket, now)
    ticket.save(update_fields=["first_response_at", *sla.SLA_FIELDS])
    _event(ticket, None, TicketEvent.Kind.SLA, field="first_response_at", new=now.isoformat())


def ticket_accept(*, ticket: Ticket, by: User) -> Ticket:
    """The requesting team accepts delivered work: the ticket is resolved."""
    return ticket_transition(ticket=ticket, to=S.RESOLVED, by=by)


def ticket_reject_delivery(*, ticket: Ticket, by: User, reason: str) -> Ticket:
    """The requesting team refuses delivered work: back to in_progress with the reason."""
    if ticket.status == S.AWAITING_ACCEPTANCE:
        return ticket_transition(ticket=ticket, to=S.IN_PROGRESS, by=by, reason=reason)
    raise TransitionNotAllowed(_("Only delivered work awaiting acceptance can be rejected."))


# --- assignment, triage fields --------------------------------------------------------------------


@transaction.atomic
def ticket_assign(*, ticket: Ticket, by: User, assignee: User | None) -> Ticket:
    """Give the ticket to a support person (or to nobody)."""
    _require_agent(by)
    if assignee is not None and not support_agents().filter(pk=assignee.pk).exists():
        raise DjangoValidationError({"assignee": _("The assignee must be a member of the support staff.")})
    ticket = _lock(ticket)
    old = ticket.assignee
    if (old.pk if old else None) == (assignee.pk if assignee else None):
        return ticket
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    _event(ticket, by, TicketEvent.Kind.ASSIGN, field="assignee", old=old or "", new=assignee or "")
    audit_record(
        actor=by,
        action="ticket.assign",
        obj=ticket,
        changes={"assignee": [old.username if old else None, assignee.username if assignee else None]},
    )
    if assignee is not None and assignee.pk != by.pk:
        notify(
            recipients=[assignee],
            verb="ticket.assigned",
            title=_("%(key)s was assigned to you") % {"key": ticket.key},
            url=_ticket_url(ticket),
        )
    return ticket


TRIAGE_FIELDS = (
    "type",
    "urgency",
    "feasibility",
    "feasibility_note",
    "effort_hours",
    "cost_estimate",
    "is_complex",
    "campaign",
)


@transaction.atomic
def ticket_update_triage(
    *, ticket: Ticket, by: User, expected_version: str | None = None, **changes: Any
) -> Ticket:
    """Change the triage fields; a new urgency recomputes the SLA due times from the new policy.

    With `expected_version` (the token the editor loaded), a ticket saved by someone else since is a conflict.
    """
    _require_agent(by)
    unknown = set(changes) - set(TRIAGE_FIELDS)
    if unknown:
        raise ValueError(f"not triage fields: {sorted(unknown)}")
    ticket = _lock(ticket)
    check_version(ticket, expected_version)
    changed: dict[str, list[str]] = {}
    for name, value in changes.items():
        old = getattr(ticket, name)
        if isinstance(old, Decimal) and value is not None:
            value = Decimal(value)
        if old != value:
            setattr(ticket, name, value)
            changed[name] = [str(old) if old is not None else "", str(value) if value is not None else ""]
            _event(
                ticket,
                by,
                TicketEvent.Kind.FIELD,
                field=name,
                old=old or "",
                new=value if value is not None else "",
            )
    if not changed:
        return ticket
    fields = {*changed, "updated_at"}
    if "urgency" in changed or "type" in changed:  # the type can choose another calendar
        _apply_due_times(ticket)
        sla.refresh(ticket, timezone.now())
        fields |= set(sla.SLA_FIELDS)
    ticket.save(update_fields=sorted(fields))
    audit_record(actor=by, action="ticket.update", obj=ticket, changes=changed)
    return ticket


# --- conversation ---------------------------------------------------------------------------------


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
    title = _("New reply on %(key)s") % {"key": ticket.key}
    if internal:
        # internal notes go to support staff only, never to the requester or watchers
        notify(
            recipients=_support_side(ticket, by),
            verb="ticket.note",
            title=title,
            body=comment.body,
            url=_ticket_url(ticket),
        )
    elif permissions.AGENT in sides and by.pk != ticket.requester_id:
        notify(
            recipients=_requester_side(ticket, by),
            verb="ticket.reply",
            title=title,
            body=comment.body,
            url=_ticket_url(ticket),
        )
    else:
        notify(
            recipients=_support_side(ticket, by),
            verb="ticket.reply",
            title=title,
            body=comment.body,
            url=_ticket_url(ticket),
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
        verb="ticket.mention",
        title=_("%(name)s mentioned you on %(key)s") % {"name": str(by), "key": ticket.key},
        body=comment.body,
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


# --- rating, retrospective --------------------------------------------------------------------------


@transaction.atomic
def rating_submit(*, ticket: Ticket, by: User, score: int, comment: str = "") -> SatisfactionRating:
    """The requesting team rates resolved work (once); a rating closes the ticket."""
    ticket = _lock(ticket)
    if permissions.TEAM not in permissions.sides_of(by, ticket):
        raise PermissionDenied(_("Only the requesting team may rate this request."))
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


# --- solution plan ----------------------------------------------------------------------------------


@transaction.atomic
def plan_save(
    *,
    ticket: Ticket,
    by: User,
    implementation_path: str,
    milestones: list[dict[str, str]],
    resources: str = "",
    submit: bool = False,
) -> SolutionPlan:
    """Write the solution plan (an approved plan edited again needs approval again)."""
    _require_agent(by)
    if not implementation_path.strip():
        raise DjangoValidationError({"implementation_path": _("Describe the implementation path.")})
    status = SolutionPlan.Status.SUBMITTED if submit else SolutionPlan.Status.DRAFT
    plan, created = SolutionPlan.objects.update_or_create(
        ticket=ticket,
        defaults={
            "implementation_path": implementation_path,
            "milestones": milestones,
            "resources": resources,
            "status": status,
            "author": by,
            "reviewed_by": None,
            "reviewed_at": None,
        },
    )
    _event(ticket, by, TicketEvent.Kind.PLAN, field="plan", new=status, internal=True)
    audit_record(actor=by, action="ticket.plan", obj=ticket, changes={"status": status})
    if submit:
        notify(
            recipients=[m for m in managers() if m.pk != by.pk],
            verb="ticket.plan_submitted",
            title=_("Plan for %(key)s awaits approval") % {"key": ticket.key},
            url=_ticket_url(ticket),
        )
    return plan


@transaction.atomic
def plan_review(*, ticket: Ticket, by: User, approve: bool, note: str = "") -> SolutionPlan:
    """A manager approves the submitted plan or sends it back with a note."""
    if not permissions.can_approve_plan(by):
        raise PermissionDenied(_("Only managers approve solution plans."))
    plan = SolutionPlan.objects.select_for_update().filter(ticket=ticket).first()
    if plan is None or plan.status != SolutionPlan.Status.SUBMITTED:
        raise TicketConflict(_("There is no plan waiting for approval."))
    if not approve and not note.strip():
        raise DjangoValidationError({"review_note": _("Say what needs to change.")})
    plan.status = SolutionPlan.Status.APPROVED if approve else SolutionPlan.Status.RETURNED
    plan.reviewed_by, plan.reviewed_at, plan.review_note = by, timezone.now(), note.strip()
    plan.save()
    _event(
        ticket,
        by,
        TicketEvent.Kind.PLAN,
        field="plan",
        old=SolutionPlan.Status.SUBMITTED,
        new=plan.status,
        note=note,
        internal=True,
    )
    audit_record(actor=by, action="ticket.plan_review", obj=ticket, changes={"status": plan.status})
    if plan.author_id != by.pk:
        notify(
            recipients=[plan.author],
            verb="ticket.plan_reviewed",
            title=_("Plan for %(key)s: %(status)s")
            % {"key": ticket.key, "status": plan.get_status_display()},
            body=note,
            url=_ticket_url(ticket),
        )
    return plan


# --- links, saved views -----------------------------------------------------------------------------


@transaction.atomic
def link_add(*, ticket: Ticket, by: User, target_key: str, kind: str) -> TicketLink:
    """Relate two tickets (duplicate of / related to / blocks)."""
    _require_agent(by)
    target = Ticket.objects.filter(key=target_key.strip().upper()).first()
    if target is None:
        raise DjangoValidationError({"target": _("No request has that key.")})
    if target.pk == ticket.pk:
        raise DjangoValidationError({"target": _("A request cannot be linked to itself.")})
    if kind not in TicketLink.Kind.values:
        raise DjangoValidationError({"kind": _("Choose a kind of link.")})
    link, created = TicketLink.objects.get_or_create(
        source=ticket, target=target, kind=kind, defaults={"created_by": by}
    )
    if created:
        _event(ticket, by, TicketEvent.Kind.LINK, field=kind, new=target.key)
        audit_record(actor=by, action="ticket.link", obj=ticket, changes={kind: target.key})
    return link


@transaction.atomic
def link_remove(*, link: TicketLink, by: User) -> None:
    _require_agent(by)
    _event(link.source, by, TicketEvent.Kind.LINK, field=link.kind, old=link.target.key)
    audit_record(actor=by, action="ticket.unlink", obj=link.source, changes={link.kind: link.target.key})
    link.delete()


@transaction.atomic
def saved_view_save(*, user: User, name: str, query: str, expected_version: str | None = None) -> SavedView:
    """Save the queue's current filters under a name.

    A new name makes a new view. The same name replaces that view, and then `expected_version` is the
    version the person read it at: "" (not given) is VersionRequired, an older one EditConflict.
    """
    name = name.strip()[:60]
    view = SavedView.objects.select_for_update().filter(user=user, name=name).first()
    if view is None:
        try:
            with transaction.atomic():
                return SavedView.objects.create(user=user, name=name, query=query[:1000])
        except IntegrityError as exc:  # the same name saved at the same moment (another tab)
            raise EditConflict() from exc
    check_version(view, expected_version)
    view.query = query[:1000]
    view.save(update_fields=["query"])
    return view


@transaction.atomic
def saved_view_delete(*, user: User, view_id: int) -> int:
    deleted, _details = SavedView.objects.filter(user=user, pk=view_id).delete()
    return deleted


# --- bulk actions -------------------------------------------------------------------------------------


def bulk_assign(*, tickets: Iterable[Ticket], by: User, assignee: User | None) -> int:
    """Assign many tickets; each is its own transaction. Returns how many changed."""
    return sum(1 for ticket in tickets if ticket_assign(ticket=ticket, by=by, assignee=assignee))


def bulk_transition(
    *, tickets: Iterable[Ticket], by: User, to: str, note: str = "", feasibility: str = ""
) -> tuple[int, list[str]]:
    """Move many tickets; each on its own. Returns (moved, error messages per key)."""
    moved, errors = 0, []
    for ticket in tickets:
        try:
            ticket_transition(ticket=ticket, to=to, by=by, note=note, reason=note, feasibility=feasibility)
            moved += 1
        except TransitionError as exc:
            errors.append(f"{ticket.key}: {exc}")
    return moved, errors


# --- periodic ---------------------------------------------------------------------------------------


def sla_scan(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Store the SLA state of every ticket whose alert time has come, and notify the assignee and the
    managers once per new state (the stored state changes once, so a re-run sends nothing)."""
    now = now or timezone.now()
    counts = {Ticket.SlaState.AT_RISK: 0, Ticket.SlaState.BREACHED: 0}
    active = [s for s in Ticket.OPEN_STATUSES if s != S.WAITING_ON_REQUESTER]
    with transaction.atomic():
        due = list(
            Ticket.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("assignee")
            .filter(sla_alert_at__lte=now, status__in=active)
            .order_by("sla_alert_at")[:batch]
        )
        manager_list = list(managers()) if due else []
        for ticket in due:
            old = ticket.sla_state
            sla.refresh(ticket, now)
            ticket.save(update_fields=["sla_state", "sla_due", "sla_alert_at"])
            if ticket.sla_state == old or ticket.sla_state not in counts:
                continue
            counts[ticket.sla_state] += 1
            _event(ticket, None, TicketEvent.Kind.SLA, field="sla_state", old=old, new=ticket.sla_state)
            label = Ticket.SlaState(ticket.sla_state).label
            notify(
                recipients=[*([ticket.assignee] if ticket.assignee_id else []), *manager_list],
                verb=f"ticket.sla_{ticket.sla_state}",
                title=_("SLA %(state)s: %(key)s %(title)s")
                % {"state": label, "key": ticket.key, "title": ticket.title},
                url=_ticket_url(ticket),
                chat=ticket.sla_state == Ticket.SlaState.BREACHED,
            )
    if any(counts.values()):
        log.info(
            "sla scan at %s: %s at risk, %s breached", now.isoformat(), counts["at_risk"], counts["breached"]
        )
    return {str(k): v for k, v in counts.items()}


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


@transaction.atomic
def sla_policy_update(
    *,
    policy: SlaPolicy,
    by: User,
    first_response_minutes: int,
    resolution_minutes: int,
    calendar: BusinessCalendar,
    type_calendars: dict[str, BusinessCalendar] | None = None,
    expected_version: str | None = None,
) -> SlaPolicy:
    """A manager changes an urgency's targets and calendars: the policy's own and, per request type, another
    (new tickets and urgency or type changes use them); `type_calendars=None` keeps the per-type ones. With
    `expected_version`, a policy saved by someone else since is an EditConflict."""
    if not permissions.can_edit_sla(by):
        raise PermissionDenied(_("Only managers edit SLA policies."))
    policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
    check_version(policy, expected_version)
    current_types = {row.type: row.calendar for row in policy.type_calendars.select_related("calendar")}
    chosen = current_types if type_calendars is None else dict(type_calendars)
    unknown = set(chosen) - set(Ticket.Type.values)
    if unknown:
        raise DjangoValidationError({"type_calendars": _("Unknown request type.")})
    old = {
        "first_response_minutes": policy.first_response_minutes,
        "resolution_minutes": policy.resolution_minutes,
        "calendar": policy.calendar_id,
        "type_calendars": {t: c.pk for t, c in sorted(current_types.items())},
    }
    errors = sla.target_errors(
        calendars=_with_rows([calendar, *chosen.values()]),
        first_response_minutes=first_response_minutes,
        resolution_minutes=resolution_minutes,
    )
    if errors:
        raise DjangoValidationError(errors)
    policy.first_response_minutes, policy.resolution_minutes, policy.calendar = (
        first_response_minutes,
        resolution_minutes,
        calendar,
    )
    policy.full_clean()
    policy.save()
    policy.type_calendars.all().delete()
    SlaTypeCalendar.objects.bulk_create(
        SlaTypeCalendar(policy=policy, type=t, calendar=c) for t, c in sorted(chosen.items())
    )
    audit_record(
        actor=by,
        action="sla.policy_update",
        obj=policy,
        changes={
            "old": old,
            "new": {
                "first_response_minutes": first_response_minutes,
                "resolution_minutes": resolution_minutes,
                "calendar": calendar.pk,
                "type_calendars": {t: c.pk for t, c in sorted(chosen.items())},
            },
        },
    )
    return policy


def _with_rows(calendars: Iterable[BusinessCalendar]) -> list[BusinessCalendar]:
    """The calendars (each once) with their hours, holidays and dated hours loaded."""
    ids = {c.pk for c in calendars if c is not None}
    return list(
        BusinessCalendar.objects.filter(pk__in=ids).prefetch_related("hours", "holidays", "working_days")
    )


def _policies_out_of_reach(calendar: BusinessCalendar) -> list[str]:
    """The urgencies whose targets have no deadline on the calendar as it now is (as a policy's own
    calendar or a per-type one)."""
    fresh = _with_rows([calendar])[0]
    policies = SlaPolicy.objects.filter(
        Q(calendar=calendar) | Q(type_calendars__calendar=calendar)
    ).distinct()
    return sorted(
        str(Ticket.Urgency(p.urgency).label)
        for p in policies
        if sla.target_errors(
            calendars=[fresh],
            first_response_minutes=p.first_response_minutes,
            resolution_minutes=p.resolution_minutes,
        )
    )


Periods = Sequence[tuple[Any, Any]]


def _calendar_days_check(
    hours: Sequence[tuple[int, Any, Any]],
    holidays: Sequence[tuple[date, str]],
    working_days: Sequence[tuple[date, str, Periods]],
) -> dict[str, str]:
    """Field → message for overlapping periods and for a date entered both as a holiday and a working day."""
    errors: dict[str, str] = {}
    for day in range(7):
        pair = sla.overlapping([(s, e) for d, s, e in hours if d == day])
        if pair:
            errors[f"day_{day}"] = _overlap_message(pair)
    for day, _name, periods in working_days:
        if not periods:
            errors["working_days"] = _("%(date)s has no working hours.") % {"date": day.isoformat()}
        pair = sla.overlapping(periods)
        if pair:
            errors["working_days"] = f"{day.isoformat()}: {_overlap_message(pair)}"
    both = sorted({d for d, _n in holidays} & {d for d, _n, _p in working_days})
    if both:
        errors["working_days"] = _("%(dates)s cannot be both a holiday and a working day.") % {
            "dates": ", ".join(d.isoformat() for d in both)
        }
    return errors


def _overlap_message(pair: tuple[tuple[Any, Any], tuple[Any, Any]]) -> str:
    def shown(period: tuple[Any, Any]) -> str:
        start, end = period
        return f"{start:%H:%M}-{'24:00' if end == sla.MIDNIGHT else format(end, '%H:%M')}"

    return _("%(first)s and %(second)s overlap: enter each working minute once.") % {
        "first": shown(pair[0]),
        "second": shown(pair[1]),
    }


@transaction.atomic
def calendar_update(
    *,
    calendar: BusinessCalendar,
    by: User,
    timezone_name: str,
    hours: list[tuple[int, Any, Any]],
    holidays: list[tuple[date, str]],
    working_days: list[tuple[date, str, Periods]] | None = None,
    expected_version: str | None = None,
) -> BusinessCalendar:
    """A manager replaces a calendar's zone, weekly hours, holidays and dated hours (make-up working days,
    half days; `None` keeps them). Overlapping periods, a date that is both a holiday and a working day, or
    hours that leave a policy without a deadline are refused naming the field; with `expected_version`, a
    calendar saved by someone else since is an EditConflict."""
    if not permissions.can_edit_sla(by):
        raise PermissionDenied(_("Only managers edit business calendars."))
    calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
    check_version(calendar, expected_version)
    if working_days is None:
        working_days = [
            (w.date, w.name, sla.periods_from_json(w.periods)) for w in calendar.working_days.all()
        ]
    holidays = list(dict(holidays).items())
    errors = _calendar_days_check(hours, holidays, working_days)
    if errors:
        raise DjangoValidationError(errors)
    calendar.timezone = timezone_name
    calendar.save(update_fields=["timezone"])
    calendar.hours.all().delete()
    WorkingHours.objects.bulk_create(
        WorkingHours(calendar=calendar, weekday=d, start=s, end=e) for d, s, e in hours
    )
    calendar.holidays.all().delete()
    Holiday.objects.bulk_create(Holiday(calendar=calendar, date=d, name=n) for d, n in holidays)
    calendar.working_days.all().delete()
    WorkingDay.objects.bulk_create(
        WorkingDay(calendar=calendar, date=d, name=n, periods=sla.periods_to_json(sla.merge_periods(p)))
        for d, n, p in dict((d, (d, n, p)) for d, n, p in working_days).values()
    )
    stranded = _policies_out_of_reach(calendar)
    if stranded:
        # rolls the whole edit back: tickets of these urgencies could not be filed any more
        raise DjangoValidationError(
            {
                "__all__": _(
                    "With these hours the SLA policy of %(urgencies)s would have no deadline. Add working "
                    "hours, or change the policy first."
                )
                % {"urgencies": ", ".join(stranded)}
            }
        )
    audit_record(
        actor=by,
        action="sla.calendar_update",
        obj=calendar,
        changes={
            "timezone": timezone_name,
            "hours": len(hours),
            "holidays": len(holidays),
            "working_days": len(working_days),
        },
    )
    return calendar


class StatutoryYearUnknown(Exception):
    """The installed chinese-calendar has no published schedule for the year."""


@transaction.atomic
def calendar_load_statutory(
    *, calendar: BusinessCalendar, by: User | None, year: int, expected_version: str | None = None
) -> dict[str, int]:
    """Load China's statutory holidays and make-up working days (调休) of `year` into a calendar (by=None
    is a script). Those dates take the package's meaning, replacing what was entered for them; other dates
    are left as they are, and everything stays editable. A make-up day gets the hours of the calendar's
    first weekday (Monday–Friday) with hours. Returns counts of holidays and working days written."""
    from tickets import statutory

    if by is not None and not permissions.can_edit_sla(by):
        raise PermissionDenied(_("Only managers edit business calendars."))
    schedule = statutory.statutory_year(year)
    if schedule is None:
        raise StatutoryYearUnknown(
            _(
                "The installed chinese-calendar package has no published schedule for %(year)s (it knows "
                "%(first)s–%(last)s). Enter the days by hand, or update the package."
            )
            % {"year": year, "first": min(statutory.known_years()), "last": max(statutory.known_years())}
        )
    calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
    check_version(calendar, expected_version)
    weekly = {row.weekday: [] for row in calendar.hours.all()}
    for row in calendar.hours.all():
        weekly[row.weekday].append((row.start, row.end))
    workday_hours = next((weekly[d] for d in range(5) if weekly.get(d)), None)
    dates = [d for d, _n in schedule.holidays] + [d for d, _n in schedule.working_days]
    calendar.holidays.filter(date__in=dates).delete()
    calendar.working_days.filter(date__in=dates).delete()
    Holiday.objects.bulk_create(
        Holiday(calendar=calendar, date=d, name=n[:100]) for d, n in schedule.holidays
    )
    working = []
    if workday_hours:
        working = WorkingDay.objects.bulk_create(
            WorkingDay(
                calendar=calendar,
                date=d,
                name=(_("%(holiday)s make-up working day") % {"holiday": n})[:100],
                periods=sla.periods_to_json(sla.merge_periods(workday_hours)),
            )
            for d, n in schedule.working_days
        )
    calendar.save()  # a new version: an editor holding the old days must reload
    counts = {"holidays": len(schedule.holidays), "working_days": len(working)}
    audit_record(
        actor=by,
        action="sla.calendar_load_statutory",
        obj=calendar,
        changes={"year": year, **counts},
    )
    log.info("calendar %s: loaded %s statutory days of %s", calendar.pk, sum(counts.values()), year)
    return counts


@transaction.atomic
def calendar_create(
    *, by: User, name: str, timezone_name: str, round_the_clock: bool = False
) -> BusinessCalendar:
    """A manager adds a calendar: Monday–Friday 09:00–18:00, or every day 00:00–24:00 (editable after)."""
    import datetime as dt

    if not permissions.can_edit_sla(by):
        raise PermissionDenied(_("Only managers edit business calendars."))
    name = name_text(name)[:60]
    if not name:
        raise DjangoValidationError({"name": _("This field is required.")})
    if BusinessCalendar.objects.filter(name=name).exists():
        raise DjangoValidationError({"name": _("A calendar with this name exists.")})
    calendar = BusinessCalendar.objects.create(name=name, timezone=timezone_name)
    days, start, end = (
        (range(7), dt.time(0), dt.time(0)) if round_the_clock else (range(5), dt.time(9), dt.time(18))
    )
    WorkingHours.objects.bulk_create(
        WorkingHours(calendar=calendar, weekday=d, start=start, end=end) for d in days
    )
    audit_record(
        actor=by,
        action="sla.calendar_create",
        obj=calendar,
        changes={"name": name, "timezone": timezone_name, "round_the_clock": round_the_clock},
    )
    return calendar


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
