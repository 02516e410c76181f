"""Business-hours arithmetic for SLAs: working hours per weekday, a time zone and holidays.

Due times are `created + target + paused` in business time: business time is a monotonic clock,
so pausing for P business minutes moves every deadline by exactly P business minutes, and a new
urgency simply swaps the target. All arithmetic happens in UTC (aware datetimes that share a
ZoneInfo subtract by wall clock in Python, which would be wrong across a DST change).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from tickets.models import SlaPolicy, Ticket

UTC = dt.UTC
MAX_DAYS = 3 * 366  # a calendar with (almost) no working time must not loop for ever
AT_RISK_SHARE = 0.8


class CalendarWithoutHours(ValueError):
    """The calendar has no working time in the next few years: no deadline can be computed."""


@dataclass(frozen=True)
class Calendar:
    """A business calendar as plain values (built from tickets.models.BusinessCalendar or by hand)."""

    tz: ZoneInfo
    hours: dict[int, tuple[tuple[dt.time, dt.time], ...]]
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def windows(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The day's working periods as UTC intervals (none on a holiday)."""
        if day in self.holidays:
            return []
        return [
            (
                dt.datetime.combine(day, start, tzinfo=self.tz).astimezone(UTC),
                dt.datetime.combine(day, end, tzinfo=self.tz).astimezone(UTC),
            )
            for start, end in self.hours.get(day.weekday(), ())
        ]


def add_business_time(calendar: Calendar, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
    """The instant when `amount` of working time has passed after `start`."""
    moment = start.astimezone(UTC)
    remaining = amount
    day = moment.astimezone(calendar.tz).date()
    for _ in range(MAX_DAYS):
        for window_start, window_end in calendar.windows(day):
            if window_end <= moment:
                continue
            begin = max(window_start, moment)
            available = window_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += dt.timedelta(days=1)
    raise CalendarWithoutHours(calendar)


def business_time_between(calendar: Calendar, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Working time between two instants (zero when end is not after start)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    total = dt.timedelta(0)
    if end <= start:
        return total
    day = start.astimezone(calendar.tz).date()
    last = end.astimezone(calendar.tz).date()
    while day <= last:
        for window_start, window_end in calendar.windows(day):
            overlap = min(window_end, end) - max(window_start, start)
            if overlap > dt.timedelta(0):
                total += overlap
        day += dt.timedelta(days=1)
    return total


def calendar_from_model(business_calendar) -> Calendar:  # noqa: ANN001 (a BusinessCalendar)
    """Plain values from a BusinessCalendar (uses prefetched hours/holidays when present)."""
    hours: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for row in business_calendar.hours.all():
        hours.setdefault(row.weekday, []).append((row.start, row.end))
    return Calendar(
        tz=ZoneInfo(business_calendar.timezone),
        hours={day: tuple(sorted(periods)) for day, periods in hours.items()},
        holidays=frozenset(h.date for h in business_calendar.holidays.all()),
    )


@dataclass(frozen=True)
class Targets:
    """One urgency's targets on its calendar."""

    calendar: Calendar
    first_response: dt.timedelta
    resolution: dt.timedelta


def targets_for_policy(policy: SlaPolicy) -> Targets:
    return Targets(
        calendar=calendar_from_model(policy.calendar),
        first_response=dt.timedelta(minutes=policy.first_response_minutes),
        resolution=dt.timedelta(minutes=policy.resolution_minutes),
    )


def load_targets() -> dict[str, Targets]:
    """Every urgency's targets (three queries)."""
    from tickets.models import SlaPolicy

    policies = SlaPolicy.objects.select_related("calendar").prefetch_related(
        "calendar__hours", "calendar__holidays"
    )
    return {policy.urgency: targets_for_policy(policy) for policy in policies}


def apply_due_times(ticket: Ticket, targets: Targets) -> None:
    """Set the ticket's due times and 80 % marks from its creation time, target and paused time."""
    start = ticket.created_at
    paused = dt.timedelta(seconds=ticket.sla_paused_seconds)
    cal = targets.calendar
    ticket.first_response_due = add_business_time(cal, start, targets.first_response + paused)
    ticket.first_response_risk_at = add_business_time(
        cal, start, targets.first_response * AT_RISK_SHARE + paused
    )
    ticket.resolution_due = add_business_time(cal, start, targets.resolution + paused)
    ticket.resolution_risk_at = add_business_time(cal, start, targets.resolution * AT_RISK_SHARE + paused)


def state_at(ticket: Ticket, now: dt.datetime) -> str:
    """The SLA state the ticket is in at `now` (the beat task stores it; the queue filters on it)."""
    from tickets.models import Ticket as T

    state = T.SlaState
    if ticket.resolution_due is None or ticket.first_response_due is None:
        return state.ON_TRACK
    first_late = (ticket.first_response_at is None and now >= ticket.first_response_due) or (
        ticket.first_response_at is not None and ticket.first_response_at > ticket.first_response_due
    )
    if ticket.status in (T.Status.RESOLVED, T.Status.CLOSED):
        resolved = ticket.resolved_at or now
        return state.BREACHED if first_late or resolved > ticket.resolution_due else state.MET
    if ticket.status in (T.Status.REJECTED, T.Status.CANCELLED):
        return ticket.sla_state
    if ticket.status == T.Status.WAITING_ON_REQUESTER:
        return state.PAUSED
    if first_late or now >= ticket.resolution_due:
        return state.BREACHED
    first_risk = ticket.first_response_at is None and now >= ticket.first_response_risk_at
    if first_risk or now >= ticket.resolution_risk_at:
        return state.AT_RISK
    return state.ON_TRACK


def next_due(ticket: Ticket) -> dt.datetime | None:
    """The deadline the queue sorts by: first response until answered, then resolution; none when done."""
    if not ticket.is_open:
        return None
    if ticket.first_response_at is None:
        return ticket.first_response_due
    return ticket.resolution_due


def next_alert(ticket: Ticket) -> dt.datetime | None:
    """When the stored state must next change (the beat task looks only at rows whose time has come)."""
    from tickets.models import Ticket as T

    if not ticket.is_open or ticket.status == T.Status.WAITING_ON_REQUESTER:
        return None
    first_open = ticket.first_response_at is None
    if ticket.sla_state == T.SlaState.ON_TRACK:
        marks = [ticket.resolution_risk_at] + ([ticket.first_response_risk_at] if first_open else [])
    elif ticket.sla_state == T.SlaState.AT_RISK:
        marks = [ticket.resolution_due] + ([ticket.first_response_due] if first_open else [])
    else:
        return None
    marks = [mark for mark in marks if mark is not None]
    return min(marks) if marks else None


def refresh(ticket: Ticket, now: dt.datetime) -> None:
    """Recompute the stored state, the sort key and the next alert time (after anything that moves the clock)."""
    ticket.sla_state = state_at(ticket, now)
    ticket.sla_due = next_due(ticket)
    ticket.sla_alert_at = next_alert(ticket)


def pause(ticket: Ticket, now: dt.datetime) -> None:
    """Stop the clock (entering waiting_on_requester)."""
    if ticket.sla_paused_at is None:
        ticket.sla_paused_at = now


def resume(ticket: Ticket, targets: Targets, now: dt.datetime) -> None:
    """Restart the clock: the paused working time pushes every deadline back by as much."""
    if ticket.sla_paused_at is None:
        return
    paused = business_time_between(targets.calendar, ticket.sla_paused_at, now)
    ticket.sla_paused_seconds += int(paused.total_seconds())
    ticket.sla_paused_at = None
    apply_due_times(ticket, targets)


SLA_FIELDS = [
    "first_response_due",
    "first_response_risk_at",
    "resolution_due",
    "resolution_risk_at",
    "sla_due",
    "sla_state",
    "sla_alert_at",
    "sla_paused_at",
    "sla_paused_seconds",
]
