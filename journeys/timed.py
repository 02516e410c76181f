"""Date and schedule triggers: their occurrences in a window of time, and admitting them set-based.

Each journey with such a trigger keeps a watermark (`Journey.trigger_at`): the moment up to which its
occurrences have been admitted. A pass takes the window (watermark, now] (at most MAX_WINDOW of it; a
longer gap is caught up over the next passes), works out in Python which occurrences fall in it — a
handful of dates, usually none — and admits each with one `INSERT … SELECT` (admission.admit), moving the
watermark in the same transaction with the journey's row locked. The unique (journey, customer, trigger
source) key is the second line: an anniversary is the source `d<year>`, a schedule's occurrence
`s<YYYYMMDDTHHMM>` (UTC), so the same occurrence admits a customer at most once, whatever the watermark.

- date: yearly on the anniversary of `birth_date` or `attributes.<key>` (a "YYYY-MM-DD…" text), moved
  `days_before` / `days_after`, at `at` (HH:MM, company time zone, settings.TIME_ZONE). 29 February's
  anniversary is 28 February in a year without one. The date's own day is not an anniversary (a date in
  year Y has its first anniversary in Y + 1).
- schedule: once at `at` (an ISO date-time), or every day / week (`weekday` 1-7, Monday = 1, default
  Monday) at `at` (HH:MM, company time zone), over the tag's members at that moment.
"""

import calendar
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm_tags.models import Tag
from journeys.admission import active_journey_locked, admit
from journeys.definition import TIME_TRIGGERS, parse_at, parse_moment
from journeys.models import Journey

log = logging.getLogger(__name__)
MAX_WINDOW = timedelta(days=7)


def local_days_at(at: time, low: datetime, high: datetime) -> list[tuple[date, datetime]]:
    """The company-time dates D whose moment "D at `at`" lies in (low, high], with that moment."""
    tz = timezone.get_default_timezone()
    day = low.astimezone(tz).date() - timedelta(days=1)
    last = high.astimezone(tz).date() + timedelta(days=1)
    found = []
    while day <= last:
        moment = datetime.combine(day, at, tzinfo=tz)
        if low < moment <= high:
            found.append((day, moment))
        day += timedelta(days=1)
    return found


def anniversary_for(trigger: dict, day: date) -> tuple[int, list[str]]:
    """For a date trigger firing on company-time date `day`: the anniversary's year and the month-days
    ("MM-DD") of the dates whose anniversary it is (28 February in a year without a 29th also stands
    for 29 February)."""
    anniversary = day + timedelta(days=int(trigger.get("days_before", 0)) - int(trigger.get("days_after", 0)))
    month_days = [anniversary.strftime("%m-%d")]
    if (anniversary.month, anniversary.day) == (2, 28) and not calendar.isleap(anniversary.year):
        month_days.append("02-29")
    return anniversary.year, month_days


def schedule_occurrences(trigger: dict, low: datetime, high: datetime) -> list[datetime]:
    """The moments of a schedule trigger in (low, high], oldest first."""
    if trigger.get("every") is None:
        moment = parse_moment(trigger["at"])
        return [moment] if moment is not None and low < moment <= high else []
    days = local_days_at(parse_at(trigger["at"]), low, high)
    if trigger["every"] == "week":
        weekday = int(trigger.get("weekday", 1))
        days = [(day, moment) for day, moment in days if day.isoweekday() == weekday]
    return [moment for _day, moment in days]


def occurrence_ref(moment: datetime) -> str:
    return "s" + moment.astimezone(UTC).strftime("%Y%m%dT%H%M")


def _date_source(trigger: dict, year: int, month_days: list[str]) -> tuple[str, list[Any]]:
    """The customers whose date has its anniversary of `year` on one of `month_days`."""
    ref = f"d{year}"
    if trigger["attribute"] == "birth_date":
        return (
            "SELECT c.id AS customer_id, %s AS ref FROM crm_tags_customer c WHERE c.birth_date IS NOT NULL "
            "AND to_char(c.birth_date, 'MM-DD') = ANY(%s) AND extract(year FROM c.birth_date) < %s",
            [ref, month_days, year],
        )
    key = trigger["attribute"][len("attributes.") :]
    return (
        "SELECT c.id AS customer_id, %s AS ref FROM crm_tags_customer c "
        "WHERE (c.attributes ->> %s) ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' "
        "AND substring(c.attributes ->> %s FROM 6 FOR 5) = ANY(%s) "
        "AND substring(c.attributes ->> %s FROM 1 FOR 4)::int < %s",
        [ref, key, key, month_days, key, year],
    )


def admit_timed(*, journey_id: int, now: datetime | None = None) -> int:
    """Admit the occurrences of a date or schedule journey since its watermark; one transaction, the
    journey's row locked (a concurrent pass skips it)."""
    now = now or timezone.now()
    entered = 0
    with transaction.atomic():
        journey = active_journey_locked(journey_id)
        if journey is None:
            return 0
        if journey.trigger_at is None:  # activated before watermarks existed: from now on
            Journey.objects.filter(pk=journey.pk).update(trigger_at=now)
            return 0
        low = journey.trigger_at
        high = min(now, low + MAX_WINDOW)
        if high <= low:
            return 0
        version = journey.active_version
        trigger = version.trigger
        if trigger["kind"] == "date":
            for day, _moment in local_days_at(parse_at(trigger["at"]), low, high):
                year, month_days = anniversary_for(trigger, day)
                source, params = _date_source(trigger, year, month_days)
                entered += admit(
                    journey=journey, version=version, source_sql=source, source_params=params, now=now
                )
        else:
            tag_id = Tag.objects.filter(slug=trigger["tag"]).values_list("pk", flat=True).first()
            for moment in schedule_occurrences(trigger, low, high) if tag_id is not None else []:
                entered += admit(
                    journey=journey,
                    version=version,
                    source_sql="SELECT m.customer_id, %s AS ref FROM crm_tags_tagmembership m WHERE m.tag_id = %s",
                    source_params=[occurrence_ref(moment), tag_id],
                    now=now,
                )
        Journey.objects.filter(pk=journey.pk).update(trigger_at=high)
    if entered:
        log.info("journey %s admitted %s from its %s trigger", journey_id, entered, trigger["kind"])
    return entered


def admit_time_triggers(*, now: datetime | None = None) -> int:
    """Every active date or schedule journey admits what came round since its watermark."""
    journeys = Journey.objects.filter(
        status=Journey.Status.ACTIVE, active_version__trigger__kind__in=list(TIME_TRIGGERS)
    )
    return sum(admit_timed(journey_id=pk, now=now) for pk in journeys.values_list("pk", flat=True))
