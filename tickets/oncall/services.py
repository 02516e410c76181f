"""Writes on rotas and overrides, and the after-hours assignment of new incident and urgent requests."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Team, User
from accounts.selectors import support_agents
from accounts.services import audit_record, notify
from tickets import permissions, sla
from tickets.models import BusinessCalendar, OnCallMember, OnCallOverride, OnCallRota, Ticket, TicketEvent
from tickets.oncall import big_sale
from tickets.oncall.rota import responsible_rota, rota_plain

log = logging.getLogger(__name__)


def _require_editor(by: User) -> None:
    if not permissions.can_edit_oncall(by):
        raise PermissionDenied(_("Only managers edit on-call rotas."))


def _check_people(people: Sequence[User], field: str) -> None:
    ids = [p.pk for p in people]
    staff = set(support_agents().filter(pk__in=ids).values_list("pk", flat=True))
    strangers = [str(p) for p in people if p.pk not in staff]
    if strangers:
        raise DjangoValidationError(
            {field: _("Only support staff can be on call: %(names)s.") % {"names": ", ".join(strangers)}}
        )


@transaction.atomic
def rota_save(
    *,
    team: Team,
    by: User,
    members: Sequence[User],
    starts_on: dt.date,
    handover_weekday: int,
    handover_time: dt.time,
    calendar: BusinessCalendar | None = None,
    lead: User | None = None,
) -> OnCallRota:
    """Create or replace a team's rota: its members in order, the start and the weekly handover."""
    _require_editor(by)
    if not members:
        raise DjangoValidationError({"members": _("Name at least one person.")})
    if len({m.pk for m in members}) != len(members):
        raise DjangoValidationError({"members": _("A person can be in the rotation only once.")})
    if not 0 <= handover_weekday <= 6:
        raise DjangoValidationError({"handover_weekday": _("Choose a weekday.")})
    _check_people(members, "members")
    if lead is not None:
        _check_people([lead], "lead")
    rota = OnCallRota.objects.select_for_update().filter(team=team).first()
    old = (
        {}
        if rota is None
        else {
            "members": list(rota.members.values_list("user_id", flat=True)),
            "starts_on": rota.starts_on.isoformat(),
            "handover": [rota.handover_weekday, rota.handover_time.isoformat()],
        }
    )
    rota = rota or OnCallRota(team=team)
    rota.starts_on, rota.handover_weekday, rota.handover_time = starts_on, handover_weekday, handover_time
    rota.calendar, rota.lead = calendar, lead
    rota.save()
    rota.members.all().delete()
    OnCallMember.objects.bulk_create(
        OnCallMember(rota=rota, user=person, position=i) for i, person in enumerate(members)
    )
    audit_record(
        actor=by,
        action="tickets.oncall_rota_save",
        obj=rota,
        changes={
            "old": old,
            "new": {
                "members": [m.pk for m in members],
                "starts_on": starts_on.isoformat(),
                "handover": [handover_weekday, handover_time.isoformat()],
            },
        },
    )
    return rota


@transaction.atomic
def override_add(
    *, rota: OnCallRota, by: User, user: User, starts_at: dt.datetime, ends_at: dt.datetime, note: str = ""
) -> OnCallOverride:
    """A person covers the rota from one instant to another."""
    _require_editor(by)
    if ends_at <= starts_at:
        raise DjangoValidationError({"ends_at": _("The cover must end after it starts.")})
    _check_people([user], "user")
    override = OnCallOverride.objects.create(
        rota=rota, user=user, starts_at=starts_at, ends_at=ends_at, note=note.strip()[:200], created_by=by
    )
    audit_record(
        actor=by,
        action="tickets.oncall_override_add",
        obj=override,
        changes={"user": user.pk, "from": starts_at.isoformat(), "until": ends_at.isoformat()},
    )
    return override


@transaction.atomic
def override_remove(*, override: OnCallOverride, by: User) -> None:
    _require_editor(by)
    audit_record(
        actor=by,
        action="tickets.oncall_override_remove",
        obj=override,
        changes={
            "user": override.user_id,
            "from": override.starts_at.isoformat(),
            "until": override.ends_at.isoformat(),
        },
    )
    override.delete()


# --- assignment ----------------------------------------------------------------------------------------


def in_business_hours(calendar: BusinessCalendar | None, at: dt.datetime) -> bool:
    """Whether `at` is working time on the calendar (no calendar: always)."""
    if calendar is None:
        return True
    plain = sla.calendar_from_model(calendar)
    local_day = at.astimezone(plain.tz).date()
    return any(
        start <= at < end
        for day in (local_day - dt.timedelta(days=1), local_day, local_day + dt.timedelta(days=1))
        for start, end in plain.windows(day)
    )


def _team_calendar(rota: OnCallRota) -> BusinessCalendar | None:
    if rota.calendar_id is not None:
        return rota.calendar
    from tickets.services.sla_policies import OFFICE_CALENDAR

    return BusinessCalendar.objects.filter(name=OFFICE_CALENDAR).first()


def on_call_user(rota: OnCallRota, at: dt.datetime) -> User | None:
    """The active person on call for the rota at `at`."""
    user_id = rota_plain(rota).user_at(at)
    if user_id is None:
        return None
    return User.objects.filter(pk=user_id, is_active=True).first()


def assign_after_hours(ticket: Ticket, now: dt.datetime) -> User | None:
    """A new incident or urgent request filed outside the team's business hours (or at any hour during a
    big-sale window) goes to the person on call; returns them, or None when nothing was done."""
    if ticket.assignee_id is not None or not big_sale.applies_to(ticket):
        return None
    rota = responsible_rota(ticket.team_id)
    if rota is None:
        return None
    if big_sale.window_at(now) is None and in_business_hours(_team_calendar(rota), now):
        return None
    person = on_call_user(rota, now)
    if person is None:
        return None
    ticket.assignee = person
    Ticket.objects.filter(pk=ticket.pk).update(assignee=person)
    TicketEvent.objects.create(
        ticket=ticket,
        actor=None,
        kind=TicketEvent.Kind.ASSIGN,
        field="assignee",
        new=str(person),
        assignee=person,
        note="on-call",
    )
    audit_record(
        actor=None,
        action="ticket.assign",
        obj=ticket,
        changes={"assignee": [None, person.username], "by": "on-call"},
    )
    notify(
        recipients=[person], kind="ticket.assigned", params={"key": ticket.key}, url=ticket.get_absolute_url()
    )
    log.info("ticket %s assigned to %s on call", ticket.key, person.username)
    return person
