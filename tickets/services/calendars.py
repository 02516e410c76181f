"""Business calendars: weekly hours, holidays, make-up working days and China's statutory schedule."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from config.concurrency import check_version
from config.text import name_text
from tickets import permissions, sla
from tickets.models import BusinessCalendar, Holiday, SlaPolicy, Ticket, WorkingDay, WorkingHours
from tickets.services.sla_policies import _with_rows

log = logging.getLogger(__name__)


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
