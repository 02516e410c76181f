"""Business-hours arithmetic against a minute-by-minute reference, over random calendars.

The reference knows nothing of windows, week skipping or clock changes: a UTC minute is working time
when the office's wall clock, at that minute, shows a time inside one of that date's periods (the
weekday's, none on a holiday, or the date's own). Calendars are random weekly hours, holidays, make-up
days and half days in zones with DST changes (New York, Berlin, Lord Howe's half-hour change) and
without; starts are drawn around the 2026 changes.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tickets import sla
from tickets.forms import parse_periods

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]
# a few days before each 2026 clock change of the zones above (and ordinary weeks)
ANCHORS = [
    dt.datetime(2026, 3, 5, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 26, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 2, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 22, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 29, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 16, tzinfo=dt.UTC),
]
SCAN_DAYS = 16
MINUTE = dt.timedelta(minutes=1)


def quarter(n: int) -> dt.time:
    """The n-th quarter hour of a day as a period bound (96 = 24:00, written 00:00)."""
    return dt.time(0) if n == 96 else dt.time(n // 4, n % 4 * 15)


@st.composite
def periods(draw, *, allow_empty: bool = True):
    """Sorted, non-overlapping (and not touching) periods on quarter hours."""
    points = draw(st.lists(st.integers(0, 96), min_size=0 if allow_empty else 2, max_size=6, unique=True))
    points = sorted(points)[: len(points) // 2 * 2]
    return tuple((quarter(a), quarter(b)) for a, b in zip(points[::2], points[1::2], strict=True))


@st.composite
def calendars(draw):
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    anchor = draw(st.sampled_from(ANCHORS))
    hours = {day: draw(periods()) for day in range(7)}
    first = (anchor - dt.timedelta(days=2)).date()
    days = [first + dt.timedelta(days=n) for n in range(SCAN_DAYS + 4)]
    holidays = frozenset(draw(st.lists(st.sampled_from(days), max_size=4)))
    dated_days = draw(st.lists(st.sampled_from(days), max_size=4, unique=True))
    dated = {day: draw(periods(allow_empty=False)) for day in dated_days if day not in holidays}
    return sla.Calendar(tz=zone, hours=hours, holidays=holidays, dated=dated), anchor


def _inside(period: tuple[dt.time, dt.time], moment: dt.time) -> bool:
    start, end = period
    return start <= moment and (end == dt.time(0) or moment < end)


def working(calendar: sla.Calendar, minute: dt.datetime) -> bool:
    """The reference: does the wall clock at this UTC minute show a time inside a period of its date?"""
    local = minute.astimezone(calendar.tz)
    day = local.date()
    if day in calendar.holidays:
        periods_today = ()
    elif day in calendar.dated:
        periods_today = calendar.dated[day]
    else:
        periods_today = calendar.hours.get(day.weekday(), ())
    return any(_inside(p, local.time().replace(tzinfo=None)) for p in periods_today)


def reference_between(calendar: sla.Calendar, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    minutes, moment = 0, start
    while moment < end:
        minutes += working(calendar, moment)
        moment += MINUTE
    return minutes * MINUTE


def reference_add(
    calendar: sla.Calendar, start: dt.datetime, amount: int, limit: dt.datetime
) -> dt.datetime | None:
    moment, left = start, amount
    while moment < limit:
        if working(calendar, moment):
            left -= 1
            if left == 0:
                return moment + MINUTE
        moment += MINUTE
    return None


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=calendars(), offset=st.integers(0, 4 * 24 * 4), length=st.integers(0, 6 * 24 * 4))
def test_business_time_between_matches_the_minute_reference(data, offset, length):
    calendar, anchor = data
    start = anchor + offset * dt.timedelta(minutes=15)
    end = start + length * dt.timedelta(minutes=15)
    assert sla.business_time_between(calendar, start, end) == reference_between(calendar, start, end)


@PROPERTY
@given(data=calendars(), offset=st.integers(0, 4 * 24 * 4), amount=st.integers(1, 3 * 24 * 60))
def test_add_business_time_matches_the_minute_reference(data, offset, amount):
    calendar, anchor = data
    start = anchor + offset * dt.timedelta(minutes=15)
    limit = anchor + dt.timedelta(days=SCAN_DAYS)
    expected = reference_add(calendar, start, amount, limit)
    assume(expected is not None)
    due = sla.add_business_time(calendar, start, amount * MINUTE)
    assert due == expected
    assert sla.business_time_between(calendar, start, due) == amount * MINUTE


@PROPERTY
@given(
    raw=st.lists(st.tuples(st.integers(0, 95), st.integers(1, 96)), min_size=1, max_size=4).map(
        lambda pairs: [(a, b) for a, b in pairs if a < b]
    )
)
def test_overlapping_periods_are_rejected_and_otherwise_counted_once(raw):
    assume(raw)
    text = ", ".join(f"{a // 4:02d}:{a % 4 * 15:02d}-{b // 4:02d}:{b % 4 * 15:02d}" for a, b in raw)
    covered = [set(range(a, b)) for a, b in raw]
    overlaps = any(covered[i] & covered[j] for i in range(len(raw)) for j in range(i + 1, len(raw)))
    if overlaps:
        # entered: refused, with a message naming the two periods
        with pytest.raises(ValueError, match="overlap"):
            parse_periods(text)
    else:
        assert len(parse_periods(text)) == len(raw)
    # stored anyway (admin, old rows): the arithmetic counts each quarter hour once
    calendar = sla.Calendar(
        tz=ZoneInfo("Asia/Shanghai"), hours={0: tuple((quarter(a), quarter(b)) for a, b in raw)}
    )
    monday = dt.datetime(2026, 11, 16, tzinfo=ZoneInfo("Asia/Shanghai"))
    union = len(set().union(*covered))
    assert sla.business_time_between(calendar, monday, monday + dt.timedelta(days=1)) == union * dt.timedelta(
        minutes=15
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=calendars(), offset=st.integers(0, 4 * 24 * 4), amount=st.integers(1, 400 * 60))
def test_skipping_whole_weeks_gives_what_walking_day_by_day_gives(data, offset, amount):
    # given a long target (up to 400 working hours, many weeks through DST changes)
    calendar, anchor = data
    assume(calendar.weekly > dt.timedelta(0))
    start = anchor + offset * dt.timedelta(minutes=15)
    fast = sla.add_business_time(calendar, start, amount * MINUTE)
    # when the same is computed without skipping weeks
    walking = sla.Calendar(
        tz=calendar.tz, hours=calendar.hours, holidays=calendar.holidays, dated=calendar.dated
    )
    object.__setattr__(walking, "_regular_weeks", lambda day, limit: 0)
    # then both agree, and the time between start and due is the target
    assert sla.add_business_time(walking, start, amount * MINUTE) == fast
    assert sla.business_time_between(calendar, start, fast) == amount * MINUTE
    assert sla.business_time_between(walking, start, fast) == amount * MINUTE
