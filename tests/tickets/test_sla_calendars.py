"""SLA calendars (issue 17): make-up working days, half days, overlaps, DST, 24/7, far deadlines.

Each case is worked out by hand; every one of them failed on the code before this change.
"""

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from tickets import sla
from tickets.models import Ticket

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_SIX = {day: ((dt.time(9), dt.time(18)),) for day in range(5)}
ROUND_THE_CLOCK = {day: ((dt.time(0), dt.time(0)),) for day in range(7)}
NATIONAL_DAY_2025 = frozenset(dt.date(2025, 10, d) for d in range(1, 9))
MAKE_UP_2025 = {
    dt.date(2025, 9, 28): ((dt.time(9), dt.time(18)),),
    dt.date(2025, 10, 11): ((dt.time(9), dt.time(18)),),
}


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


# --- make-up working days and half days ---------------------------------------------------------------


def test_make_up_working_day_counts_the_issue_reproduction():
    # given the 2025 National Day holidays (1-8 October) and the make-up Sunday 28 September
    calendar = sla.Calendar(tz=SH, hours=NINE_TO_SIX, holidays=NATIONAL_DAY_2025, dated=MAKE_UP_2025)
    # when 4 working hours are added from Friday 26 September 17:00
    due = sla.add_business_time(calendar, dt.datetime(2025, 9, 26, 17, tzinfo=SH), hours(4))
    # then 1 h on Friday and 3 h on the make-up Sunday: 12:00 on 28 September, not Monday the 29th
    assert due == dt.datetime(2025, 9, 28, 12, tzinfo=SH)


def test_after_the_holidays_the_make_up_saturday_counts_too():
    calendar = sla.Calendar(tz=SH, hours=NINE_TO_SIX, holidays=NATIONAL_DAY_2025, dated=MAKE_UP_2025)
    # Tuesday 30 September 17:00 + 10 h: 1 h Tuesday, holidays 1-8, 9 h on Thursday the 9th
    due = sla.add_business_time(calendar, dt.datetime(2025, 9, 30, 17, tzinfo=SH), hours(10))
    assert due == dt.datetime(2025, 10, 9, 18, tzinfo=SH)
    due = sla.add_business_time(calendar, dt.datetime(2025, 9, 30, 17, tzinfo=SH), hours(20))
    # 1 + 9 + 9 = 19 h by Friday evening; the 20th hour is on the make-up Saturday 11 October
    assert due == dt.datetime(2025, 10, 11, 10, tzinfo=SH)


def test_half_day_replaces_the_weekdays_hours():
    # given Monday 16 November 2026 is a half day (09:00-12:00)
    calendar = sla.Calendar(
        tz=SH, hours=NINE_TO_SIX, dated={dt.date(2026, 11, 16): ((dt.time(9), dt.time(12)),)}
    )
    # when 4 h are added from 10:00, then 2 h on the half day and 2 h on Tuesday
    assert sla.add_business_time(calendar, dt.datetime(2026, 11, 16, 10, tzinfo=SH), hours(4)) == dt.datetime(
        2026, 11, 17, 11, tzinfo=SH
    )
    assert sla.business_time_between(
        calendar, dt.datetime(2026, 11, 16, 0, tzinfo=SH), dt.datetime(2026, 11, 17, 0, tzinfo=SH)
    ) == hours(3)


# --- overlapping periods -----------------------------------------------------------------------------


def test_overlapping_periods_are_counted_once():
    # given periods entered as 09:00-12:00 and 11:00-14:00 (before the form refused them)
    calendar = sla.Calendar(tz=SH, hours={0: ((dt.time(9), dt.time(12)), (dt.time(11), dt.time(14)))})
    monday = dt.date(2026, 11, 16)
    start, end = dt.datetime.combine(monday, dt.time(0), SH), dt.datetime.combine(monday, dt.time(23), SH)
    # then Monday has 5 working hours, not 6
    assert sla.business_time_between(calendar, start, end) == hours(5)
    assert sla.add_business_time(calendar, start, hours(5)) == dt.datetime.combine(monday, dt.time(14), SH)


def test_overlapping_names_the_two_periods():
    pair = sla.overlapping([(dt.time(9), dt.time(12)), (dt.time(11), dt.time(14))])
    assert pair == ((dt.time(9), dt.time(12)), (dt.time(11), dt.time(14)))
    assert sla.overlapping([(dt.time(9), dt.time(12)), (dt.time(12), dt.time(18))]) is None


# --- DST: elapsed real time while the wall clock is inside a period ------------------------------------


def test_new_york_spring_forward_period_starting_in_the_skipped_hour():
    # given Sunday hours 02:30-05:00 in New York; on 8 March 2026 clocks jump from 02:00 to 03:00
    calendar = sla.Calendar(tz=NY, hours={6: ((dt.time(2, 30), dt.time(5)),)})
    day_start = dt.datetime(2026, 3, 8, 0, tzinfo=NY)
    # then the period begins when the clock first shows a time inside it (03:00 EDT): 2 real hours
    assert sla.business_time_between(calendar, day_start, day_start + hours(12)) == hours(2)
    assert sla.add_business_time(calendar, day_start, hours(1)) == dt.datetime(2026, 3, 8, 8, tzinfo=dt.UTC)


def test_new_york_fall_back_repeated_hour_counts_twice():
    # given Sunday hours 00:00-03:00; on 1 November 2026 the clock shows 01:00-02:00 twice
    calendar = sla.Calendar(tz=NY, hours={6: ((dt.time(0), dt.time(3)),)})
    day_start = dt.datetime(2026, 11, 1, 0, tzinfo=NY)
    # then 4 real hours: 04:00-08:00 UTC
    assert sla.business_time_between(calendar, day_start, day_start + hours(12)) == hours(4)
    assert sla.add_business_time(calendar, day_start, hours(4)) == dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)


def test_new_york_period_starting_inside_the_repeated_hour():
    # 01:30-03:00 on the fall-back day: 01:30-02:00 EDT, then 01:30-03:00 EST (01:00-01:30 EST is outside)
    calendar = sla.Calendar(tz=NY, hours={6: ((dt.time(1, 30), dt.time(3)),)})
    assert calendar.windows(dt.date(2026, 11, 1)) == [
        (dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)),
        (dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)),
    ]


def test_berlin_spring_forward_round_the_clock_day_has_23_hours():
    calendar = sla.Calendar(tz=BERLIN, hours=ROUND_THE_CLOCK)
    start = dt.datetime(2026, 3, 29, 0, tzinfo=BERLIN)
    end = dt.datetime(2026, 3, 30, 0, tzinfo=BERLIN)
    assert sla.business_time_between(calendar, start, end) == hours(23)
    # 24 working hours from Sunday midnight end at Monday 01:00 CEST
    assert sla.add_business_time(calendar, start, hours(24)) == dt.datetime(2026, 3, 30, 1, tzinfo=BERLIN)


def test_berlin_fall_back_night_shift_across_the_repeated_hour():
    # given a night shift 00:00-06:00 on Sundays; on 25 October 2026 02:00-03:00 happens twice
    calendar = sla.Calendar(tz=BERLIN, hours={6: ((dt.time(0), dt.time(6)),)})
    start = dt.datetime(2026, 10, 25, 0, tzinfo=BERLIN)  # 22:00 UTC the day before
    # then the shift is 7 real hours, ending at 06:00 CET = 05:00 UTC
    assert sla.business_time_between(calendar, start, start + hours(10)) == hours(7)
    assert sla.add_business_time(calendar, start, hours(7)) == dt.datetime(2026, 10, 25, 5, tzinfo=dt.UTC)


def test_berlin_spring_forward_period_starting_in_the_skipped_hour():
    # given Sunday hours 02:30-04:00; on 29 March 2026 Berlin's clocks jump from 02:00 to 03:00
    calendar = sla.Calendar(tz=BERLIN, hours={6: ((dt.time(2, 30), dt.time(4)),)})
    day_start = dt.datetime(2026, 3, 29, 0, tzinfo=BERLIN)
    # then the period runs 03:00-04:00 CEST: one real hour (the wall clock never shows 02:30)
    assert sla.business_time_between(calendar, day_start, day_start + hours(12)) == hours(1)
    assert sla.add_business_time(calendar, day_start, dt.timedelta(minutes=1)) == dt.datetime(
        2026, 3, 29, 1, 1, tzinfo=dt.UTC
    )


def test_berlin_fall_back_period_starting_inside_the_repeated_hour():
    # given Sunday hours 02:30-06:00; on 25 October 2026 the clock shows 02:00-03:00 twice
    calendar = sla.Calendar(tz=BERLIN, hours={6: ((dt.time(2, 30), dt.time(6)),)})
    day_start = dt.datetime(2026, 10, 25, 0, tzinfo=BERLIN)
    # then 02:30-03:00 CEST and 02:30-06:00 CET: 4 real hours (02:00-02:30 CET is outside the period)
    assert sla.business_time_between(calendar, day_start, day_start + hours(12)) == hours(4)


def test_berlin_office_hours_are_unaffected_by_a_night_change():
    calendar = sla.Calendar(tz=BERLIN, hours=NINE_TO_SIX)
    start = dt.datetime(2026, 3, 27, 17, tzinfo=BERLIN)  # Friday 17:00 CET
    due = sla.add_business_time(calendar, start, hours(2))
    assert due == dt.datetime(2026, 3, 30, 10, tzinfo=BERLIN)  # Monday 10:00 CEST = 08:00 UTC
    assert sla.business_time_between(calendar, start, due) == hours(2)


# --- round the clock and 24:00 ------------------------------------------------------------------------


def test_round_the_clock_saturday_outage_starts_at_once():
    calendar = sla.Calendar(tz=SH, hours=ROUND_THE_CLOCK)
    saturday = dt.datetime(2026, 6, 20, 3, 15, tzinfo=SH)  # 618 week, a Saturday night
    assert sla.add_business_time(calendar, saturday, dt.timedelta(minutes=30)) == saturday + dt.timedelta(
        minutes=30
    )
    assert sla.add_business_time(calendar, saturday, hours(2)) == saturday + hours(2)


def test_period_ending_at_midnight():
    calendar = sla.Calendar(tz=SH, hours={0: ((dt.time(18), dt.time(0)),), 1: ((dt.time(0), dt.time(2)),)})
    start = dt.datetime(2026, 11, 16, 23, tzinfo=SH)
    assert sla.add_business_time(calendar, start, hours(2)) == dt.datetime(2026, 11, 17, 1, tzinfo=SH)


# --- no horizon -----------------------------------------------------------------------------------------


def test_a_deadline_more_than_three_years_ahead_computes():
    calendar = sla.Calendar(tz=SH, hours=NINE_TO_SIX)
    start = dt.datetime(2026, 11, 16, 9, tzinfo=SH)
    # 4 years of 9-hour weekdays: 4 * 52 weeks * 45 h
    amount = hours(4 * 52 * 45)
    due = sla.add_business_time(calendar, start, amount)
    assert due == dt.datetime(2030, 11, 11, 9, tzinfo=SH) or due.year == 2030
    assert sla.business_time_between(calendar, start, due) == amount


def test_the_largest_target_computes_quickly_on_a_thin_calendar():
    # given a Berlin calendar with one hour a week (DST changes twice a year)
    calendar = sla.Calendar(tz=BERLIN, hours={2: ((dt.time(9), dt.time(10)),)})
    began = time.monotonic()
    due = sla.add_business_time(
        calendar, dt.datetime(2026, 1, 1, tzinfo=BERLIN), dt.timedelta(minutes=60 * 5000)
    )
    # then 5,000 Wednesdays later, within a second
    assert due.astimezone(BERLIN).weekday() == 2 and due.astimezone(BERLIN).hour == 10
    assert 2121 <= due.year <= 2122
    assert time.monotonic() - began < 2


def test_one_working_minute_a_year_computes():
    # given a calendar whose only working time is one minute on each 1 January (dated hours)
    dated = {dt.date(year, 1, 1): ((dt.time(9), dt.time(9, 1)),) for year in range(2027, 2040)}
    calendar = sla.Calendar(tz=SH, hours={}, dated=dated)
    due = sla.add_business_time(calendar, dt.datetime(2026, 12, 7, tzinfo=SH), dt.timedelta(minutes=10))
    assert due == dt.datetime(2036, 1, 1, 9, 1, tzinfo=SH)


def test_a_calendar_with_no_working_time_left_is_an_error_not_a_hang():
    calendar = sla.Calendar(tz=SH, hours={}, dated={dt.date(2027, 1, 1): ((dt.time(9), dt.time(9, 1)),)})
    with pytest.raises(sla.CalendarWithoutHours):
        sla.add_business_time(calendar, dt.datetime(2026, 12, 7, tzinfo=SH), dt.timedelta(minutes=2))


def test_a_deadline_after_9999_is_an_error():
    calendar = sla.Calendar(tz=SH, hours={2: ((dt.time(9), dt.time(9, 1)),)})
    with pytest.raises(sla.CalendarWithoutHours):
        sla.add_business_time(calendar, dt.datetime(2026, 12, 7, tzinfo=SH), dt.timedelta(minutes=1_000_000))


# --- first response at resolution ------------------------------------------------------------------------


def test_resolved_before_the_first_response_due_without_a_reply_is_met_not_breached():
    calendar = sla.Calendar(tz=SH, hours=ROUND_THE_CLOCK)
    targets = sla.Targets(calendar=calendar, first_response=hours(4), resolution=hours(8))
    created = dt.datetime(2026, 11, 16, 10, tzinfo=SH)
    ticket = Ticket(created_at=created, status=Ticket.Status.NEW)
    sla.apply_due_times(ticket, targets)
    # resolved at 12:00 without a public reply, looked at a week later
    ticket.status, ticket.resolved_at = Ticket.Status.RESOLVED, created + hours(2)
    assert sla.state_at(ticket, created + hours(24 * 7)) == "met"
    # resolved at 15:00 (after the first-response due at 14:00): the first response was late
    ticket.resolved_at = created + hours(5)
    assert sla.state_at(ticket, created + hours(24 * 7)) == "breached"
