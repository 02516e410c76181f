"""Business-hours arithmetic against hand-worked cases.

The calendar is Monday–Friday 09:00–18:00 in Asia/Shanghai unless a test says otherwise.
2026-11-16 is a Monday; 2026-11-20 a Friday; 2026-11-23 the next Monday.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tickets import sla
from tickets.models import Ticket

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_SIX = {day: ((dt.time(9), dt.time(18)),) for day in range(5)}
CAL = sla.Calendar(tz=SH, hours=NINE_TO_SIX)


def at(day: int, hour: int, minute: int = 0, tz: ZoneInfo = SH, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=tz)


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


@pytest.mark.parametrize(
    ("start", "amount", "expected"),
    [
        pytest.param(at(16, 10), hours(2), at(16, 12), id="within-one-day"),
        pytest.param(at(16, 17), hours(2), at(17, 10), id="overnight"),
        pytest.param(at(16, 7), dt.timedelta(minutes=30), at(16, 9, 30), id="before-opening"),
        pytest.param(at(16, 20), hours(1), at(17, 10), id="after-closing"),
        pytest.param(at(16, 16), hours(2), at(16, 18), id="ends-exactly-at-closing"),
        pytest.param(at(20, 17, 30), hours(4), at(23, 12, 30), id="over-the-weekend"),
        pytest.param(at(21, 11), hours(1), at(23, 10), id="starts-on-saturday"),
        pytest.param(at(16, 10), hours(27), at(19, 10), id="three-working-days"),
    ],
)
def test_add_business_time(start, amount, expected):
    # given the 09:00-18:00 weekday calendar, when we add working time, then the due time is as worked out
    assert sla.add_business_time(CAL, start, amount) == expected


def test_holiday_is_skipped():
    # given Monday the 23rd is a holiday
    calendar = sla.Calendar(tz=SH, hours=NINE_TO_SIX, holidays=frozenset({dt.date(2026, 11, 23)}))
    # when 4 h are added from Friday 17:30, then 0.5 h on Friday and 3.5 h on Tuesday
    assert sla.add_business_time(calendar, at(20, 17, 30), hours(4)) == at(24, 12, 30)


def test_lunch_break_is_not_working_time():
    calendar = sla.Calendar(
        tz=SH, hours={d: ((dt.time(9), dt.time(12)), (dt.time(13), dt.time(18))) for d in range(5)}
    )
    assert sla.add_business_time(calendar, at(16, 11, 30), hours(1)) == at(16, 13, 30)


def test_start_given_in_utc_counts_in_the_calendars_zone():
    # 01:00 UTC is 09:00 in Shanghai: one hour later is 10:00 Shanghai = 02:00 UTC
    start = dt.datetime(2026, 11, 16, 1, 0, tzinfo=dt.UTC)
    assert sla.add_business_time(CAL, start, hours(1)) == dt.datetime(2026, 11, 16, 2, 0, tzinfo=dt.UTC)


def test_calendar_in_another_zone_across_dst_change():
    # given a Berlin calendar; summer time ends on Sunday 2026-10-25
    calendar = sla.Calendar(tz=BERLIN, hours=NINE_TO_SIX)
    start = dt.datetime(2026, 10, 23, 17, 0, tzinfo=BERLIN)  # Friday 17:00 CEST = 15:00 UTC
    due = sla.add_business_time(calendar, start, hours(2))
    # then one hour on Friday, one on Monday: Monday 10:00 CET = 09:00 UTC
    assert due == dt.datetime(2026, 10, 26, 9, 0, tzinfo=dt.UTC)
    assert sla.business_time_between(calendar, start, due) == hours(2)


def test_business_time_between_over_weekend_and_holiday():
    calendar = sla.Calendar(tz=SH, hours=NINE_TO_SIX, holidays=frozenset({dt.date(2026, 11, 23)}))
    # Friday 17:00 → Tuesday 10:00: 1 h Friday, nothing on the weekend or the holiday, 1 h Tuesday
    assert sla.business_time_between(calendar, at(20, 17), at(24, 10)) == hours(2)


def test_business_time_between_is_zero_backwards():
    assert sla.business_time_between(CAL, at(16, 12), at(16, 10)) == dt.timedelta(0)


def test_calendar_without_hours_is_an_error():
    with pytest.raises(sla.CalendarWithoutHours):
        sla.add_business_time(sla.Calendar(tz=SH, hours={}), at(16, 10), hours(1))


URGENT = sla.Targets(calendar=CAL, first_response=dt.timedelta(minutes=30), resolution=hours(2))
ROUTINE = sla.Targets(calendar=CAL, first_response=hours(4), resolution=hours(27))


def new_ticket(created: dt.datetime, targets: sla.Targets) -> Ticket:
    ticket = Ticket(created_at=created, status=Ticket.Status.NEW)
    sla.apply_due_times(ticket, targets)
    sla.refresh(ticket, created)
    return ticket


def test_due_times_and_80_percent_marks():
    ticket = new_ticket(at(16, 10), URGENT)
    assert ticket.first_response_due == at(16, 10, 30)
    assert ticket.first_response_risk_at == at(16, 10, 24)
    assert ticket.resolution_due == at(16, 12)
    assert ticket.resolution_risk_at == at(16, 11, 36)
    assert ticket.sla_due == ticket.first_response_due
    assert ticket.sla_alert_at == at(16, 10, 24)


@pytest.mark.parametrize(
    ("now", "first_response_at", "expected"),
    [
        (at(16, 10, 10), None, "on_track"),
        (at(16, 10, 25), None, "at_risk"),
        (at(16, 10, 31), None, "breached"),
        (at(16, 11), at(16, 10, 20), "on_track"),
        (at(16, 11, 40), at(16, 10, 20), "at_risk"),
        (at(16, 11), at(16, 10, 40), "breached"),
        (at(16, 12, 1), at(16, 10, 20), "breached"),
    ],
)
def test_state_at(now, first_response_at, expected):
    ticket = new_ticket(at(16, 10), URGENT)
    ticket.first_response_at = first_response_at
    assert sla.state_at(ticket, now) == expected


def test_pause_and_resume_move_deadlines_by_the_working_time_paused():
    # given an urgent ticket from Monday 10:00 (first response 10:30, resolution 12:00)
    ticket = new_ticket(at(16, 10), URGENT)
    # when it waits on the requester from 10:15 to 14:15 (4 working hours)
    ticket.status = Ticket.Status.WAITING_ON_REQUESTER
    sla.pause(ticket, at(16, 10, 15))
    sla.refresh(ticket, at(16, 10, 15))
    assert ticket.sla_state == "paused"
    assert ticket.sla_alert_at is None
    ticket.status = Ticket.Status.IN_PROGRESS
    sla.resume(ticket, URGENT, at(16, 14, 15))
    sla.refresh(ticket, at(16, 14, 15))
    # then every deadline moved by 4 h
    assert ticket.sla_paused_seconds == 4 * 3600
    assert ticket.first_response_due == at(16, 14, 30)
    assert ticket.resolution_due == at(16, 16)
    assert ticket.sla_state == "on_track"


def test_pause_overnight_counts_only_working_time():
    ticket = new_ticket(at(16, 16), URGENT)  # resolution due 18:00
    sla.pause(ticket, at(16, 17))
    sla.resume(ticket, URGENT, at(17, 10))  # 1 h Monday + 1 h Tuesday
    assert ticket.resolution_due == at(17, 11)


def test_urgency_change_recomputes_from_creation():
    # given a routine ticket from Monday 10:00: first response 14:00, resolution Thursday 10:00
    ticket = new_ticket(at(16, 10), ROUTINE)
    assert ticket.first_response_due == at(16, 14)
    assert ticket.resolution_due == at(19, 10)
    # when it becomes urgent, then the urgent targets count from the same start
    sla.apply_due_times(ticket, URGENT)
    assert ticket.first_response_due == at(16, 10, 30)
    assert ticket.resolution_due == at(16, 12)


def test_resolved_in_time_is_met_and_late_is_breached():
    ticket = new_ticket(at(16, 10), URGENT)
    ticket.first_response_at = at(16, 10, 5)
    ticket.status = Ticket.Status.RESOLVED
    ticket.resolved_at = at(16, 11)
    assert sla.state_at(ticket, at(17, 9)) == "met"
    ticket.resolved_at = at(16, 13)
    assert sla.state_at(ticket, at(17, 9)) == "breached"
