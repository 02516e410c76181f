"""Who is on call: the weekly rotation with overrides, against a brute-force reference over random rotas.

The reference knows nothing of shift indexes or change points: it counts the handovers (every 7 × 24 h
after the first, which is right for Asia/Shanghai, a zone without clock changes) at or before a moment,
takes the latest override covering it, and finds `until` by walking a quarter-hour grid forward until
someone else is on call (every handover and override edge lies on that grid).
"""

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickets.oncall import Override, Rota

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUARTER = dt.timedelta(minutes=15)
BASE = dt.datetime(2026, 12, 14, tzinfo=SHANGHAI)  # a Monday; random rotas start around New Year


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI)


def rota(members, starts_on=dt.date(2026, 12, 28), weekday=0, at=dt.time(10), overrides=()) -> Rota:
    return Rota(
        members=members,
        starts_on=starts_on,
        handover_weekday=weekday,
        handover_time=at,
        tz=SHANGHAI,
        overrides=list(overrides),
    )


# --- worked examples -----------------------------------------------------------------------------------


def test_monday_ten_oclock_handover_rotates_weekly():
    r = rota([1, 2, 3])
    assert r.user_at(local(2026, 12, 28, 9, 59)) is None  # before the first handover
    assert r.user_at(local(2026, 12, 28, 10, 0)) == 1
    assert r.user_at(local(2027, 1, 4, 9, 59)) == 1
    assert r.user_at(local(2027, 1, 4, 10, 0)) == 2
    assert r.user_at(local(2027, 1, 18, 10, 0)) == 1  # round again
    assert r.until(local(2026, 12, 31, 3, 0)) == local(2027, 1, 4, 10, 0)


def test_first_handover_is_the_handover_weekday_on_or_after_the_start():
    r = rota([1, 2], starts_on=dt.date(2026, 12, 30), weekday=4, at=dt.time(18, 30))  # a Wednesday start
    assert r.first_handover() == local(2027, 1, 1, 18, 30)  # the Friday after


def test_an_override_covers_part_of_a_shift_and_ends_the_shift_early():
    r = rota(
        [1, 2], overrides=[Override(user_id=9, starts_at=local(2027, 1, 2, 20), ends_at=local(2027, 1, 3, 8))]
    )
    assert r.until(local(2027, 1, 1, 12)) == local(2027, 1, 2, 20)
    assert r.user_at(local(2027, 1, 2, 23)) == 9
    assert r.until(local(2027, 1, 2, 23)) == local(2027, 1, 3, 8)
    assert r.user_at(local(2027, 1, 3, 8)) == 1  # back to the rotation


def test_an_override_by_the_next_person_extends_their_shift_backwards_not_the_until():
    # 2 covers the last evening of 1's week: 1's shift ends when the cover starts; 2's runs on past the
    # handover to the end of 2's own week
    cover = Override(user_id=2, starts_at=local(2027, 1, 3, 18), ends_at=local(2027, 1, 4, 12))
    r = rota([1, 2], overrides=[cover])
    assert r.until(local(2027, 1, 1)) == local(2027, 1, 3, 18)
    assert r.until(local(2027, 1, 3, 20)) == local(2027, 1, 11, 10)


def test_the_later_override_wins_where_two_overlap():
    first = Override(user_id=7, starts_at=local(2027, 1, 1), ends_at=local(2027, 1, 2), order=1)
    second = Override(user_id=8, starts_at=local(2027, 1, 1, 12), ends_at=local(2027, 1, 1, 18), order=2)
    r = rota([1, 2], overrides=[second, first])
    assert r.user_at(local(2027, 1, 1, 13)) == 8
    assert r.until(local(2027, 1, 1, 13)) == local(2027, 1, 1, 18)
    assert r.user_at(local(2027, 1, 1, 19)) == 7


def test_one_person_alone_is_on_call_without_end():
    assert rota([5]).until(local(2027, 2, 1)) is None


def test_handover_at_midnight_across_the_year_end():
    r = rota([1, 2], starts_on=dt.date(2026, 12, 25), weekday=4, at=dt.time(0))
    assert r.user_at(local(2027, 1, 1, 0, 0)) == 2
    assert r.user_at(local(2026, 12, 31, 23, 59)) == 1
    assert r.until(local(2026, 12, 31, 23, 59)) == local(2027, 1, 1)


# --- against the reference ------------------------------------------------------------------------------


def ref_user(r: Rota, at: dt.datetime) -> int | None:
    covering = [o for o in r.overrides if o.starts_at <= at < o.ends_at]
    if covering:
        return max(covering, key=lambda o: o.order).user_id
    day = r.starts_on
    while day.weekday() != r.handover_weekday:
        day += dt.timedelta(days=1)
    boundary = dt.datetime.combine(day, r.handover_time, tzinfo=SHANGHAI)
    count = 0
    while boundary <= at:
        count += 1
        boundary += dt.timedelta(days=7)
    return None if count == 0 else r.members[(count - 1) % len(r.members)]


def ref_until(r: Rota, at: dt.datetime, horizon: dt.datetime) -> dt.datetime | None:
    who = ref_user(r, at)
    if who is None:
        return None
    moment = at - dt.timedelta(minutes=at.minute % 15, seconds=at.second) + QUARTER
    while moment <= horizon:
        if ref_user(r, moment) != who:
            return moment
        moment += QUARTER
    return None


quarters = st.integers(min_value=0, max_value=4 * 24 * 21 - 1)  # within three weeks of BASE


@st.composite
def rotas(draw):
    members = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4, unique=True))
    overrides = []
    for order in range(draw(st.integers(0, 4))):
        start = draw(quarters)
        length = draw(st.integers(1, 4 * 24 * 9))
        overrides.append(
            Override(
                user_id=draw(st.integers(1, 8)),
                starts_at=BASE + start * QUARTER,
                ends_at=BASE + (start + length) * QUARTER,
                order=order,
            )
        )
    return Rota(
        members=members,
        starts_on=BASE.date() + dt.timedelta(days=draw(st.integers(0, 20))),
        handover_weekday=draw(st.integers(0, 6)),
        handover_time=dt.time(draw(st.integers(0, 23)), 15 * draw(st.integers(0, 3))),
        tz=SHANGHAI,
        overrides=overrides,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=rotas(), offset=st.integers(0, 4 * 24 * 35), seconds=st.integers(0, 899))
def test_rota_matches_the_brute_force_reference(r, offset, seconds):
    at = BASE + offset * QUARTER + dt.timedelta(seconds=seconds)
    assert r.user_at(at) == ref_user(r, at)
    # far enough for every member to have had a turn after the last override
    horizon = BASE + dt.timedelta(weeks=12)
    expected = ref_until(r, at, horizon)
    got = r.until(at)
    if expected is None:
        assert got is None or got > horizon
    else:
        assert got == expected
        assert r.user_at(got) != r.user_at(at)
