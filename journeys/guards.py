"""What stands between a step and a customer: consent per purpose, a frequency cap per customer per
channel per day across every journey, and quiet hours (customer-facing actions wait for morning).

Settings (optional; the defaults are here):
- JOURNEYS_QUIET_HOURS = (22, 8): no customer-facing action from 22:00 to 08:00 company time (TIME_ZONE);
- JOURNEYS_FREQUENCY_CAP = {"email": 2, ...}: contacts a customer may get per channel per day, any journey;
  a channel not named gets JOURNEYS_FREQUENCY_CAP_DEFAULT (3).
"""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from privacy import consent

CHANNEL_OF_PURPOSE = {"marketing_email": "email", "marketing_sms": "sms", "marketing_push": "push"}


def company_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def quiet_until(now: datetime) -> datetime | None:
    """The end of the quiet hours `now` falls in (an aware instant), or None outside them."""
    start, end = getattr(settings, "JOURNEYS_QUIET_HOURS", (22, 8))
    if start == end:
        return None
    local = now.astimezone(company_zone())
    hour = local.hour + local.minute / 60
    inside = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if not inside:
        return None
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    return datetime.combine(day, time(end), tzinfo=company_zone())


def consented(customer_ids: list[int], purpose: str) -> set[int]:
    """The customers among `customer_ids` who may be reached for `purpose` now."""
    if not customer_ids:
        return set()
    where, params = consent.purpose_allowed_sql("c.id", purpose)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id FROM unnest(%s::bigint[]) AS c(id) WHERE {where}",  # noqa: S608 - checked column
            [customer_ids, *params],
        )
        return {row[0] for row in cursor.fetchall()}


def daily_cap(channel: str) -> int:
    caps = getattr(settings, "JOURNEYS_FREQUENCY_CAP", {})
    return int(caps.get(channel, getattr(settings, "JOURNEYS_FREQUENCY_CAP_DEFAULT", 3)))


def cap_take(customer_ids: list[int], channel: str, now: datetime) -> set[int]:
    """Count one contact on `channel` today for each (distinct) customer under the cap; returns those
    counted (the rest are capped). One statement: the counter's row lock orders concurrent journeys, so
    the cap holds across them."""
    cap = daily_cap(channel)
    if cap <= 0 or not customer_ids:
        return set()
    day = now.astimezone(company_zone()).date()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO journeys_contactcount (customer_id, channel, day, count) "
            "SELECT DISTINCT unnest(%s::bigint[]), %s, %s::date, 1 "
            "ON CONFLICT (customer_id, channel, day) DO UPDATE SET count = journeys_contactcount.count + 1 "
            "WHERE journeys_contactcount.count < %s RETURNING customer_id",
            [customer_ids, channel, day, cap],
        )
        return {row[0] for row in cursor.fetchall()}
