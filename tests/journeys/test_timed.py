"""Date and schedule triggers: who enters, when (company time zone), and exactly once per anniversary or
occurrence across ticks, gaps and re-read windows."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from journeys import engine, services, tasks, timed
from journeys.models import Enrolment, Journey
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def watermark(journey: Journey, at: datetime) -> None:
    """Given the journey has admitted every occurrence up to `at`."""
    Journey.objects.filter(pk=journey.pk).update(trigger_at=at)


def admitted(journey: Journey) -> dict[int, list[str]]:
    refs: dict[int, list[str]] = {}
    for e in Enrolment.objects.filter(journey=journey).order_by("pk"):
        refs.setdefault(e.customer_id, []).append(e.trigger_ref)
    return refs


def birthday_journey(by, **trigger):
    return f.journey(
        by,
        trigger={"kind": "date", "attribute": "birth_date", "at": "09:00", **trigger},
        entry={"reentry": "always"},
    )


# --- date ----------------------------------------------------------------------------------------------


def test_a_birthday_greeting_three_days_before_at_nine_company_time(manager):
    # given a journey "three days before the birthday, at 09:00" and customers born on three days
    journey = birthday_journey(manager, days_before=3)
    due = f.customer(birth_date=date(1990, 3, 13))
    f.customer(birth_date=date(1985, 3, 14))
    f.customer(birth_date=date(1990, 3, 12))
    f.customer(birth_date=None)
    watermark(journey, local(2026, 3, 10, 0, 0))
    # when the tick runs just before 09:00 Shanghai (01:00 UTC) nobody enters
    assert timed.admit_timed(journey_id=journey.pk, now=datetime(2026, 3, 10, 0, 59, tzinfo=UTC)) == 0
    # then at 09:00 the customer whose birthday is on 13 March enters, for the 2026 anniversary
    assert timed.admit_timed(journey_id=journey.pk, now=local(2026, 3, 10, 9, 0)) == 1
    assert admitted(journey) == {due.pk: ["d2026"]}
    # and the following ticks that day admit nobody again
    assert timed.admit_timed(journey_id=journey.pk, now=local(2026, 3, 10, 9, 0, 5)) == 0
    assert timed.admit_timed(journey_id=journey.pk, now=local(2026, 3, 10, 23, 0)) == 0


def test_a_re_read_window_admits_nobody_twice_and_next_year_admits_again(manager):
    journey = birthday_journey(manager, days_before=3)
    person = f.customer(birth_date=date(1990, 3, 13))
    watermark(journey, local(2026, 3, 10, 8, 0))
    timed.admit_timed(journey_id=journey.pk, now=local(2026, 3, 10, 10, 0))
    engine.run_due(now=local(2026, 3, 10, 10, 0))  # no steps: the enrolment completes
    # a watermark set back over the same moment (a restored cursor, an overlapping pass) adds nobody
    watermark(journey, local(2026, 3, 10, 8, 0))
    assert timed.admit_timed(journey_id=journey.pk, now=local(2026, 3, 10, 10, 0)) == 0
    # a year later the same customer enters again (re-entry "always"), for the 2027 anniversary
    watermark(journey, local(2027, 3, 10, 8, 0))
    assert timed.admit_timed(journey_id=journey.pk, now=local(2027, 3, 10, 9, 30)) == 1
    assert admitted(journey) == {person.pk: ["d2026", "d2027"]}


def test_re_entry_never_keeps_a_customer_to_one_birthday(manager):
    journey = f.journey(
        manager,
        trigger={"kind": "date", "attribute": "birth_date", "at": "09:00"},
        entry={"reentry": "never"},
    )
    person = f.customer(birth_date=date(1990, 3, 13))
    watermark(journey, local(2026, 3, 13, 8, 0))
    timed.admit_timed(journey_id=journey.pk, now=local(2026, 3, 13, 10, 0))
    watermark(journey, local(2027, 3, 13, 8, 0))
    assert timed.admit_timed(journey_id=journey.pk, now=local(2027, 3, 13, 10, 0)) == 0
    assert admitted(journey) == {person.pk: ["d2026"]}


def test_hourly_ticks_over_a_week_admit_each_birthday_exactly_once(manager):
    journey = birthday_journey(manager, days_before=3)
    people = [f.customer(birth_date=date(1980 + day, 4, day)) for day in range(1, 15)]
    start = local(2026, 3, 28, 0, 0)
    watermark(journey, start)
    for hour in range(1, 24 * 7 + 1):
        timed.admit_timed(journey_id=journey.pk, now=start + timedelta(hours=hour))
    # 09:00 came round on 28 March to 3 April: the birthdays three days on, 31 March to 6 April
    expected = {p.pk: ["d2026"] for p in people if p.birth_date.day <= 6}
    assert admitted(journey) == expected


def test_a_gap_is_caught_up_and_a_window_longer_than_a_week_is_taken_in_steps(manager):
    journey = birthday_journey(manager)
    early = f.customer(birth_date=date(1990, 5, 2))
    late = f.customer(birth_date=date(1990, 5, 11))
    watermark(journey, local(2026, 5, 1, 0, 0))
    now = local(2026, 5, 12, 0, 0)
    # one pass reads at most seven days: the birthday of 2 May now, the one of 11 May at the next pass
    assert timed.admit_timed(journey_id=journey.pk, now=now) == 1
    assert Journey.objects.get(pk=journey.pk).trigger_at == local(2026, 5, 8, 0, 0)
    assert timed.admit_timed(journey_id=journey.pk, now=now) == 1
    assert admitted(journey) == {early.pk: ["d2026"], late.pk: ["d2026"]}


def test_an_anniversary_early_in_january_fires_in_december_for_the_next_year(manager):
    journey = birthday_journey(manager, days_before=3)
    person = f.customer(birth_date=date(1990, 1, 1))
    watermark(journey, local(2026, 12, 29, 0, 0))
    timed.admit_timed(journey_id=journey.pk, now=local(2026, 12, 29, 9, 0))
    assert admitted(journey) == {person.pk: ["d2027"]}


def test_29_february_falls_on_28_february_in_a_year_without_one(manager):
    journey = birthday_journey(manager)
    leapling = f.customer(birth_date=date(2000, 2, 29))
    on_28th = f.customer(birth_date=date(2001, 2, 28))
    # 2027 has no 29 February: both enter on the 28th
    watermark(journey, local(2027, 2, 28, 0, 0))
    timed.admit_timed(journey_id=journey.pk, now=local(2027, 3, 1, 23, 0))
    assert admitted(journey) == {leapling.pk: ["d2027"], on_28th.pk: ["d2027"]}
    engine.run_due(now=local(2027, 3, 1, 23, 0))
    # 2028 has one: the 28th is only the 28th's, the 29th the leapling's
    watermark(journey, local(2028, 2, 28, 0, 0))
    assert timed.admit_timed(journey_id=journey.pk, now=local(2028, 2, 28, 23, 0)) == 1
    assert timed.admit_timed(journey_id=journey.pk, now=local(2028, 2, 29, 23, 0)) == 1
    assert admitted(journey) == {leapling.pk: ["d2027", "d2028"], on_28th.pk: ["d2027", "d2028"]}
    assert timed.anniversary_for({}, date(2027, 2, 28)) == (2027, ["02-28", "02-29"])
    assert timed.anniversary_for({}, date(2028, 2, 28)) == (2028, ["02-28"])


def test_a_date_in_the_customers_attributes(manager):
    journey = f.journey(
        manager,
        trigger={"kind": "date", "attribute": "attributes.member_since", "days_after": 1, "at": "10:00"},
        entry={"reentry": "always"},
    )
    member = f.customer(attributes={"member_since": "2020-05-01"})
    with_time = f.customer(attributes={"member_since": "2019-05-01T15:00:00+08:00"})
    f.customer(attributes={"member_since": "2026-05-01"})  # joined this year: no anniversary yet
    f.customer(attributes={"member_since": "soon"})
    f.customer(attributes={"member_since": 20200501})
    f.customer(attributes={"other": "2020-05-01"})
    watermark(journey, local(2026, 5, 2, 0, 0))
    timed.admit_timed(journey_id=journey.pk, now=local(2026, 5, 2, 10, 0))
    assert admitted(journey) == {member.pk: ["d2026"], with_time.pk: ["d2026"]}


def test_the_entry_rules_apply_to_a_date_trigger(manager):
    journey = f.journey(
        manager,
        trigger={"kind": "date", "attribute": "birth_date", "at": "09:00"},
        entry={"reentry": "always", "condition": {"attr": "city", "op": "=", "value": "Beijing"}},
    )
    beijing = f.customer(birth_date=date(1990, 6, 1), city="Beijing")
    f.customer(birth_date=date(1990, 6, 1), city="Shanghai")
    watermark(journey, local(2026, 6, 1, 0, 0))
    timed.admit_timed(journey_id=journey.pk, now=local(2026, 6, 1, 9, 0))
    assert admitted(journey) == {beijing.pk: ["d2026"]}


# --- schedule ------------------------------------------------------------------------------------------


def test_a_one_off_schedule_admits_the_tags_members_at_that_moment_once(manager):
    tag = f.manual_tag()
    members = f.customers(2)
    f.enter(tag, members)
    at = timezone.now() + timedelta(days=2)
    journey = f.journey(manager, trigger={"kind": "schedule", "tag": tag.slug, "at": at.isoformat()})
    watermark(journey, at - timedelta(hours=1))
    assert timed.admit_timed(journey_id=journey.pk, now=at - timedelta(seconds=1)) == 0
    assert timed.admit_timed(journey_id=journey.pk, now=at) == 2
    latecomer = f.customer()
    f.enter(tag, [latecomer])
    assert timed.admit_timed(journey_id=journey.pk, now=at + timedelta(days=1)) == 0
    ref = timed.occurrence_ref(at)
    assert admitted(journey) == {m.pk: [ref] for m in members}


def test_a_daily_schedule_takes_the_members_of_each_day_exactly_once(manager):
    tag = f.manual_tag()
    stays, leaves, joins = f.customers(3)
    f.enter(tag, [stays, leaves])
    journey = f.journey(
        manager,
        trigger={"kind": "schedule", "tag": tag.slug, "every": "day", "at": "09:00"},
        entry={"reentry": "always"},
    )
    start = local(2026, 6, 1, 0, 0)
    watermark(journey, start)
    for hour in range(1, 24 + 1):  # day one, hourly ticks
        timed.admit_timed(journey_id=journey.pk, now=start + timedelta(hours=hour))
        engine.run_due(now=start + timedelta(hours=hour))
    f.leave(tag, [leaves])
    f.enter(tag, [joins])
    for hour in range(25, 48 + 1):  # day two
        timed.admit_timed(journey_id=journey.pk, now=start + timedelta(hours=hour))
        engine.run_due(now=start + timedelta(hours=hour))
    day1, day2 = "s20260601T0100", "s20260602T0100"  # 09:00 Shanghai is 01:00 UTC
    assert admitted(journey) == {stays.pk: [day1, day2], leaves.pk: [day1], joins.pk: [day2]}


def test_a_weekly_schedule_runs_on_its_weekday(manager):
    tag = f.manual_tag()
    member = f.customer()
    f.enter(tag, [member])
    journey = f.journey(
        manager,
        trigger={"kind": "schedule", "tag": tag.slug, "every": "week", "weekday": 3, "at": "18:30"},
        entry={"reentry": "always"},
    )
    start = local(2026, 6, 1, 0, 0)  # a Monday
    watermark(journey, start)
    for day in range(1, 15):
        timed.admit_timed(journey_id=journey.pk, now=start + timedelta(days=day))
        engine.run_due(now=start + timedelta(days=day))
    # Wednesdays 3 and 10 June at 18:30 Shanghai (10:30 UTC)
    assert admitted(journey) == {member.pk: ["s20260603T1030", "s20260610T1030"]}


def test_occurrences_missed_in_a_gap_do_not_enrol_a_customer_twice_at_once(manager):
    tag = f.manual_tag()
    member = f.customer()
    f.enter(tag, [member])
    journey = f.journey(
        manager,
        trigger={"kind": "schedule", "tag": tag.slug, "every": "day", "at": "09:00"},
        entry={"reentry": "always"},
    )
    watermark(journey, local(2026, 6, 1, 0, 0))
    # three occurrences in one pass: the re-entry rule (not twice at the same time) admits the first only
    assert timed.admit_timed(journey_id=journey.pk, now=local(2026, 6, 3, 12, 0)) == 1
    assert admitted(journey) == {member.pk: ["s20260601T0100"]}


def test_activation_starts_the_watermark_and_a_resume_does_not_replay_the_pause(manager):
    tag = f.manual_tag()
    f.enter(tag, f.customers(1))
    before = timezone.now()
    journey = f.journey(manager, trigger={"kind": "schedule", "tag": tag.slug, "every": "day", "at": "09:00"})
    assert before <= Journey.objects.get(pk=journey.pk).trigger_at <= timezone.now()
    services.journey_pause(journey=journey, by=manager)
    watermark(journey, timezone.now() - timedelta(days=3))
    resumed = timezone.now()
    services.journey_activate(journey=journey, by=manager)
    restarted = Journey.objects.get(pk=journey.pk).trigger_at
    assert restarted >= resumed
    # the three days' occurrences while it was paused are not replayed
    assert timed.admit_timed(journey_id=journey.pk, now=restarted) == 0
    assert not Enrolment.objects.filter(journey=journey).exists()


def test_a_paused_journey_admits_nobody(manager):
    tag = f.manual_tag()
    f.enter(tag, f.customers(1))
    journey = f.journey(manager, trigger={"kind": "schedule", "tag": tag.slug, "every": "day", "at": "09:00"})
    services.journey_pause(journey=journey, by=manager)
    watermark(journey, local(2026, 6, 1, 0, 0))
    assert timed.admit_time_triggers(now=local(2026, 6, 2, 0, 0)) == 0


def test_the_beat_tick_admits_a_schedule_that_came_round(manager):
    tag = f.manual_tag()
    member = f.customer()
    f.enter(tag, [member])
    an_hour_ago = timezone.localtime(timezone.now() - timedelta(hours=1), SHANGHAI)
    journey = f.journey(
        manager,
        trigger={"kind": "schedule", "tag": tag.slug, "every": "day", "at": an_hour_ago.strftime("%H:%M")},
        steps=[{"wait": {"days": 1}}],
    )
    watermark(journey, timezone.now() - timedelta(hours=2))
    tasks.tick()
    enrolment = Enrolment.objects.get(journey=journey)
    assert enrolment.customer_id == member.pk and enrolment.step_started_at is not None


def test_the_api_creates_date_and_schedule_journeys_and_names_a_bad_field(api_for, marketer):
    f.manual_tag("vip")
    birthday = {"kind": "date", "attribute": "birth_date", "days_before": 3, "at": "09:00"}
    weekly = {"kind": "schedule", "tag": "vip", "every": "week", "at": "10:00"}
    for trigger in (birthday, weekly):
        response = api_for(marketer).post(
            "/api/v1/journeys/", {"name": "J", "trigger": trigger}, format="json"
        )
        assert response.status_code == 201, response.content
    bad = api_for(marketer).post(
        "/api/v1/journeys/", {"name": "J", "trigger": {**birthday, "at": "9 o'clock"}}, format="json"
    )
    assert bad.status_code == 400
    assert [e["path"] for e in bad.json()["errors"]] == ["trigger.at"]
