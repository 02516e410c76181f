"""Business-hours arithmetic for SLAs: working hours per weekday, a time zone, holidays and dated hours.

Due times are `created + target + paused` in business time: business time is a monotonic clock,
so pausing for P business minutes moves every deadline by exactly P business minutes, and a new
urgency simply swaps the target. All arithmetic happens in UTC (aware datetimes that share a
ZoneInfo subtract by wall clock in Python, which would be wrong across a DST change).

What counts (docs/tickets.md says the same to managers):

- an instant is working time when the office's wall clock, at that instant, shows a time inside one of
  that date's periods; the time counted is real (elapsed) time. So a period whose start the clock skips
  (spring forward) begins when the clock first shows a time inside it, and a period that covers the
  hour the clock repeats (fall back) counts that hour twice, as it really passes twice;
- a date's periods are the weekday's hours, unless the date is a holiday (no periods) or has dated
  hours of its own (a make-up working day, 调休, or a half day): then only those;
- a period's end may be 24:00 (midnight at the end of the day); overlapping periods are refused when
  entered, and merged here, so no minute is ever counted twice.

There is no horizon: a calendar with any working time ahead gives a deadline however far it lies,
quickly (whole regular weeks are skipped at once). Only a calendar with no working time left at all,
or a deadline after the year 9999 (which no date type can hold), is `CalendarWithoutHours`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy

if TYPE_CHECKING:
    from tickets.models import SlaPolicy, Ticket

UTC = dt.UTC
AT_RISK_SHARE = 0.8
MIDNIGHT = dt.time(0)
# The last day whose deadline can be written down (datetime ends on 9999-12-31; a week's margin for the
# arithmetic around it).
LAST_DAY = dt.date(9999, 12, 20)
# The largest target a policy may have: 1,000,000 business minutes (1,852 nine-hour working days; about
# seven years on a Monday-Friday office calendar, two years round the clock).
MAX_TARGET_MINUTES = 1_000_000

Period = tuple[dt.time, dt.time]  # an end of 00:00 means 24:00 (the end of the day)


class CalendarWithoutHours(ValueError):
    """No deadline can be computed: the calendar has no working time left, or the deadline would fall
    after the year 9999."""


def _bounds(period: Period) -> tuple[dt.timedelta, dt.timedelta]:
    start, end = period
    begin = dt.timedelta(hours=start.hour, minutes=start.minute, seconds=start.second)
    finish = (
        dt.timedelta(days=1)
        if end == MIDNIGHT
        else dt.timedelta(hours=end.hour, minutes=end.minute, seconds=end.second)
    )
    return begin, finish


def merge_periods(periods: Iterable[Period]) -> tuple[Period, ...]:
    """Periods sorted, with overlapping or touching ones joined (so nothing is counted twice)."""
    spans = sorted((_bounds(p), p) for p in periods)
    merged: list[list] = []
    for (begin, finish), (start, end) in spans:
        if finish <= begin:
            continue
        if merged and begin <= merged[-1][1]:
            if finish > merged[-1][1]:
                merged[-1][1], merged[-1][3] = finish, end
            continue
        merged.append([begin, finish, start, end])
    return tuple((start, end) for _b, _f, start, end in merged)


def overlapping(periods: Iterable[Period]) -> tuple[Period, Period] | None:
    """The first two periods that overlap (touching is fine: 09:00-12:00, 12:00-18:00), or None."""
    spans = sorted((_bounds(p), p) for p in periods)
    for (prev_bounds, prev), (bounds, current) in zip(spans, spans[1:], strict=False):
        if bounds[0] < prev_bounds[1]:
            return prev, current
    return None


# --- the zone's clock changes ------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _transitions(zone: str, year: int) -> tuple[dt.datetime, ...]:
    """The instants (UTC) in `year` at which the zone's UTC offset changes, found by sampling every
    week and bisecting to the second (no zone changes its clock twice within a week)."""
    tz = ZoneInfo(zone)
    lo = dt.datetime(year, 1, 1, tzinfo=UTC) if year > 1 else dt.datetime(1, 1, 8, tzinfo=UTC)
    hi = dt.datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else dt.datetime(9999, 12, 31, tzinfo=UTC)
    found: list[dt.datetime] = []
    step = dt.timedelta(days=7)
    a, off_a = lo, lo.astimezone(tz).utcoffset()
    while a < hi:
        b = min(a + step, hi)
        off_b = b.astimezone(tz).utcoffset()
        if off_b != off_a:
            left, right = a, b  # offset(left) == off_a, offset(right) != off_a
            while right - left > dt.timedelta(seconds=1):
                mid = left + (right - left) // 2
                mid = mid.replace(microsecond=0)
                if mid.astimezone(tz).utcoffset() == off_a:
                    left = mid
                else:
                    right = mid
            found.append(right)
        a, off_a = b, off_b
    return tuple(found)


def _transitions_between(tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """The zone's clock changes in [lo, hi), in order."""
    return [
        t for year in range(lo.year, hi.year + 1) for t in _transitions(str(tz.key), year) if lo <= t < hi
    ]


def _first_transition(tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> dt.datetime | None:
    """The zone's first clock change in [lo, hi), or None."""
    for year in range(lo.year, hi.year + 1):
        for t in _transitions(str(tz.key), year):
            if lo <= t < hi:
                return t
    return None


def _segments(
    tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime, dt.timedelta]]:
    """[lo, hi) cut where the zone's offset changes: (start, end, offset) with one offset each."""
    cuts = [lo, *_transitions_between(tz, lo, hi), hi]
    return [(a, b, a.astimezone(tz).utcoffset()) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]


# --- the calendar ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """A business calendar as plain values (built from tickets.models.BusinessCalendar or by hand).

    `hours` maps a weekday (0 = Monday) to its periods; `holidays` are whole days off; `dated` maps a
    date to its own periods (a make-up working day or a half day), which replace the weekday's.
    """

    tz: ZoneInfo
    hours: Mapping[int, tuple[Period, ...]]
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    dated: Mapping[dt.date, tuple[Period, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hours = {day: merge_periods(periods) for day, periods in self.hours.items()}
        dated = {day: merge_periods(periods) for day, periods in self.dated.items()}
        object.__setattr__(self, "hours", hours)
        object.__setattr__(self, "dated", dated)
        weekly = sum(
            (_bounds(p)[1] - _bounds(p)[0] for periods in hours.values() for p in periods), dt.timedelta(0)
        )
        object.__setattr__(self, "_weekly", weekly)
        object.__setattr__(self, "_special", tuple(sorted(set(self.holidays) | set(dated))))
        object.__setattr__(
            self,
            "_dated_working",
            tuple(sorted(day for day, periods in dated.items() if periods and day not in self.holidays)),
        )

    @property
    def weekly(self) -> dt.timedelta:
        """Working time in a week without holidays, dated hours or clock changes."""
        return self._weekly  # type: ignore[attr-defined]

    def periods_on(self, day: dt.date) -> tuple[Period, ...]:
        """The date's periods on the wall clock: none on a holiday, its dated hours, or the weekday's."""
        if day in self.holidays:
            return ()
        if day in self.dated:
            return self.dated[day]
        return self.hours.get(day.weekday(), ())

    def day_start(self, day: dt.date) -> dt.datetime:
        """The first instant (UTC) whose wall-clock date could be `day` (a margin before its midnight)."""
        return dt.datetime.combine(day, MIDNIGHT, tzinfo=UTC) - dt.timedelta(hours=26)

    def windows(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The day's working time as UTC intervals: every instant whose wall clock shows `day` and a time
        inside one of its periods (two intervals for a period across a repeated hour)."""
        periods = self.periods_on(day)
        if not periods:
            return []
        local_midnight = dt.datetime.combine(day, MIDNIGHT, tzinfo=UTC)  # the wall clock, read as UTC
        lo = local_midnight - dt.timedelta(hours=15)
        hi = local_midnight + dt.timedelta(hours=39)
        result: list[tuple[dt.datetime, dt.datetime]] = []
        segments = _segments(self.tz, lo, hi)
        for period in periods:
            begin, finish = _bounds(period)
            for seg_start, seg_end, offset in segments:
                start = max(seg_start, local_midnight + begin - offset)
                end = min(seg_end, local_midnight + finish - offset)
                if start < end:
                    if result and result[-1][1] == start:
                        result[-1] = (result[-1][0], end)
                    else:
                        result.append((start, end))
        return sorted(result)

    def _regular_weeks(self, day: dt.date, limit: int) -> int:
        """How many whole weeks from `day` on (at most `limit`) hold exactly `weekly` working time: no
        holiday or dated hours in them and no clock change."""
        if limit <= 0:
            return 0
        index = bisect.bisect_left(self._special, day)  # type: ignore[attr-defined]
        if index < len(self._special):  # type: ignore[attr-defined]
            limit = min(limit, (self._special[index] - day).days // 7)  # type: ignore[attr-defined]
        limit = min(limit, (LAST_DAY - day).days // 7)
        if limit <= 0:
            return 0
        # a clock change within a day of the stretch makes that week irregular
        lo = self.day_start(day)
        hi = dt.datetime.combine(day + dt.timedelta(days=7 * limit), MIDNIGHT, tzinfo=UTC) + dt.timedelta(
            hours=26
        )
        change = _first_transition(self.tz, lo, hi)
        if change is not None:
            # the first wall-clock date whose windows the change can reach (clocks run at most UTC-12)
            reached = (change - dt.timedelta(hours=13)).date()
            limit = min(limit, (reached - day).days // 7)
        return max(limit, 0)

    def next_working_date(self, day: dt.date) -> dt.date:
        """`day`, or with no weekly hours the next date with dated hours; CalendarWithoutHours when the
        calendar has no working time from `day` on."""
        if self.weekly > dt.timedelta(0):
            return day
        dated: tuple[dt.date, ...] = self._dated_working  # type: ignore[attr-defined]
        index = bisect.bisect_left(dated, day)
        if index == len(dated):
            raise CalendarWithoutHours(self)
        return dated[index]


def add_business_time(calendar: Calendar, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
    """The first instant at which `amount` of working time has passed since `start`."""
    moment = start.astimezone(UTC)
    if amount <= dt.timedelta(0):
        return moment
    remaining = amount
    # a day's windows may begin up to 14 hours before its wall-clock midnight (UTC+14)
    day = moment.astimezone(calendar.tz).date() - dt.timedelta(days=1)
    while True:
        day = calendar.next_working_date(day)
        if day > LAST_DAY:
            raise CalendarWithoutHours(calendar)
        weekly = calendar.weekly
        if weekly and remaining > weekly and moment <= calendar.day_start(day):
            # whole regular weeks at once; never the week the deadline falls in
            weeks = calendar._regular_weeks(day, (remaining - dt.timedelta(microseconds=1)) // weekly)
            if weeks:
                remaining -= weekly * weeks
                day += dt.timedelta(days=7 * weeks)
                continue
        for window_start, window_end in calendar.windows(day):
            if window_end <= moment:
                continue
            begin = max(window_start, moment)
            available = window_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += dt.timedelta(days=1)


def business_time_between(calendar: Calendar, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Working time between two instants (zero when end is not after start)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    total = dt.timedelta(0)
    if end <= start:
        return total
    day = start.astimezone(calendar.tz).date() - dt.timedelta(days=1)
    last = min(end.astimezone(calendar.tz).date(), LAST_DAY) + dt.timedelta(days=1)
    while day <= last:
        weekly = calendar.weekly
        if weekly and start <= calendar.day_start(day):
            # whole regular weeks that end (with their margin) before `end`
            room = (last - day).days // 7 - 1
            weeks = calendar._regular_weeks(day, room)
            if weeks:
                total += weekly * weeks
                day += dt.timedelta(days=7 * weeks)
                continue
        for window_start, window_end in calendar.windows(day):
            overlap = min(window_end, end) - max(window_start, start)
            if overlap > dt.timedelta(0):
                total += overlap
        day += dt.timedelta(days=1)
    return total


def reachable(calendar: Calendar, start: dt.datetime, amount: dt.timedelta) -> bool:
    """Whether a deadline exists for `amount` of working time after `start`."""
    try:
        add_business_time(calendar, start, amount)
    except CalendarWithoutHours:
        return False
    return True


TARGET_OUT_OF_REACH = gettext_lazy(
    "On this calendar this target has no deadline: the calendar has no working time left, or the deadline "
    "would fall after the year 9999. Add working hours or choose a shorter target."
)
TARGET_TOO_LARGE = gettext_lazy("A target can be at most 1,000,000 business minutes.")


def target_errors(
    *, calendars: Iterable[object], first_response_minutes: int | None, resolution_minutes: int | None
) -> dict[str, str]:
    """Field → message for targets that are too large or have no deadline, from now, on any of the
    BusinessCalendars (a policy's own and its per-type ones); empty when every deadline can be computed."""
    errors: dict[str, str] = {}
    now = dt.datetime.now(UTC)
    plain = [calendar_from_model(c) for c in calendars if c is not None]
    for name, minutes in (
        ("first_response_minutes", first_response_minutes),
        ("resolution_minutes", resolution_minutes),
    ):
        if minutes is None:
            continue
        if minutes > MAX_TARGET_MINUTES:
            errors[name] = str(TARGET_TOO_LARGE)
        elif any(not reachable(c, now, dt.timedelta(minutes=minutes)) for c in plain):
            errors[name] = str(TARGET_OUT_OF_REACH)
    return errors


def periods_from_json(value: object) -> tuple[Period, ...]:
    """Dated hours as stored (`[["09:00", "12:00"], ...]`, "24:00" for midnight) as periods."""
    periods: list[Period] = []
    for start, end in value or []:  # type: ignore[union-attr]
        periods.append(
            (dt.time.fromisoformat(start), MIDNIGHT if end == "24:00" else dt.time.fromisoformat(end))
        )
    return tuple(periods)


def periods_to_json(periods: Iterable[Period]) -> list[list[str]]:
    return [[f"{s:%H:%M}", "24:00" if e == MIDNIGHT else f"{e:%H:%M}"] for s, e in periods]


def calendar_from_model(business_calendar) -> Calendar:  # noqa: ANN001 (a BusinessCalendar)
    """Plain values from a BusinessCalendar (uses prefetched hours, holidays and dated hours when present)."""
    hours: dict[int, list[Period]] = {}
    for row in business_calendar.hours.all():
        hours.setdefault(row.weekday, []).append((row.start, row.end))
    return Calendar(
        tz=ZoneInfo(business_calendar.timezone),
        hours={day: tuple(periods) for day, periods in hours.items()},
        holidays=frozenset(h.date for h in business_calendar.holidays.all()),
        dated={d.date: periods_from_json(d.periods) for d in business_calendar.working_days.all()},
    )


@dataclass(frozen=True)
class Targets:
    """One urgency's targets on its calendar."""

    calendar: Calendar
    first_response: dt.timedelta
    resolution: dt.timedelta


@dataclass(frozen=True)
class PolicyTargets:
    """An urgency's targets with the calendar per request type (the policy's own for other types)."""

    default: Targets
    by_type: Mapping[str, Targets] = field(default_factory=dict)

    def for_type(self, ticket_type: str) -> Targets:
        return self.by_type.get(ticket_type, self.default)


def targets_for_policy(policy: SlaPolicy) -> PolicyTargets:
    first = dt.timedelta(minutes=policy.first_response_minutes)
    resolution = dt.timedelta(minutes=policy.resolution_minutes)
    calendars: dict[int, Calendar] = {}

    def plain(business_calendar) -> Calendar:  # noqa: ANN001
        if business_calendar.pk not in calendars:
            calendars[business_calendar.pk] = calendar_from_model(business_calendar)
        return calendars[business_calendar.pk]

    return PolicyTargets(
        default=Targets(calendar=plain(policy.calendar), first_response=first, resolution=resolution),
        by_type={
            row.type: Targets(calendar=plain(row.calendar), first_response=first, resolution=resolution)
            for row in policy.type_calendars.all()
        },
    )


def load_targets(urgency: str | None = None) -> dict[str, PolicyTargets]:
    """Every urgency's targets, or one's (five queries: policies, their calendars' hours, holidays and
    dated hours, the per-type calendars; three more when there are per-type calendars)."""
    from tickets.models import SlaPolicy

    calendar_rows = ("hours", "holidays", "working_days")
    policies = SlaPolicy.objects.select_related("calendar").prefetch_related(
        *(f"calendar__{rows}" for rows in calendar_rows),
        "type_calendars__calendar",
        *(f"type_calendars__calendar__{rows}" for rows in calendar_rows),
    )
    if urgency is not None:
        policies = policies.filter(urgency=urgency)
    return {policy.urgency: targets_for_policy(policy) for policy in policies}


def apply_due_times(ticket: Ticket, targets: Targets | PolicyTargets) -> None:
    """Set the ticket's due times and 80 % marks from its creation time, target and paused time."""
    if isinstance(targets, PolicyTargets):
        targets = targets.for_type(ticket.type)
    if max(targets.first_response, targets.resolution) > dt.timedelta(minutes=MAX_TARGET_MINUTES):
        # a target stored before the limit existed: no deadline is computed from it (the caller refuses)
        raise CalendarWithoutHours(targets)
    start = ticket.created_at
    paused = dt.timedelta(seconds=ticket.sla_paused_seconds)
    cal = targets.calendar
    ticket.first_response_due = add_business_time(cal, start, targets.first_response + paused)
    ticket.first_response_risk_at = add_business_time(
        cal, start, targets.first_response * AT_RISK_SHARE + paused
    )
    ticket.resolution_due = add_business_time(cal, start, targets.resolution + paused)
    ticket.resolution_risk_at = add_business_time(cal, start, targets.resolution * AT_RISK_SHARE + paused)


def first_response_time(ticket: Ticket) -> dt.datetime | None:
    """When the first-response target was decided: the first public reply, or the resolution when the
    request was resolved without one (the services store it so; docs/tickets.md)."""
    return ticket.first_response_at or ticket.resolved_at


def state_at(ticket: Ticket, now: dt.datetime) -> str:
    """The SLA state the ticket is in at `now` (the beat task stores it; the queue filters on it)."""
    from tickets.models import Ticket as T

    state = T.SlaState
    if ticket.resolution_due is None or ticket.first_response_due is None:
        return state.ON_TRACK
    if ticket.status in (T.Status.RESOLVED, T.Status.CLOSED):
        resolved = ticket.resolved_at or now
        answered = ticket.first_response_at or resolved
        late = answered > ticket.first_response_due or resolved > ticket.resolution_due
        return state.BREACHED if late else state.MET
    first_late = (ticket.first_response_at is None and now >= ticket.first_response_due) or (
        ticket.first_response_at is not None and ticket.first_response_at > ticket.first_response_due
    )
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


def resume(ticket: Ticket, targets: Targets | PolicyTargets, now: dt.datetime) -> None:
    """Restart the clock: the paused working time pushes every deadline back by as much."""
    if ticket.sla_paused_at is None:
        return
    if isinstance(targets, PolicyTargets):
        targets = targets.for_type(ticket.type)
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
