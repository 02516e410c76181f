"""Load a year of China's statutory holidays and make-up working days (调休) into a business calendar.

    manage.py load_cn_holidays 2026                       # every calendar with weekday hours
    manage.py load_cn_holidays 2026 --calendar "Shanghai office"

Those dates replace what was entered for them; everything stays editable on the SLA page. Audited as
a script (no actor).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.inputs import InvalidInput, whole_number
from tickets import services, statutory
from tickets.models import BusinessCalendar


class Command(BaseCommand):
    help = "Load China's statutory holidays and make-up working days of a year into business calendars."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("year", help="e.g. 2026")
        parser.add_argument(
            "--calendar",
            action="append",
            default=[],
            help="a calendar's name (repeatable); default: every calendar that is not open round the clock",
        )

    def handle(self, *args: Any, year: str, calendar: list[str], **options: Any) -> None:
        try:
            number = whole_number(year, minimum=statutory.FIRST_YEAR, maximum=2100)
        except InvalidInput as exc:
            raise CommandError(f"year: {exc.message}") from exc
        if calendar:
            calendars = list(BusinessCalendar.objects.filter(name__in=calendar).order_by("pk"))
            missing = sorted(set(calendar) - {c.name for c in calendars})
            if missing:
                raise CommandError(f"no calendar named {', '.join(missing)}")
        else:
            # a round-the-clock calendar (hours every day of the week) keeps running through holidays
            calendars = [
                c
                for c in BusinessCalendar.objects.prefetch_related("hours").order_by("pk")
                if len({h.weekday for h in c.hours.all()}) < 7
            ]
        for chosen in calendars:
            try:
                counts = services.calendar_load_statutory(calendar=chosen, by=None, year=number)
            except services.StatutoryYearUnknown as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{chosen.name}: {counts['holidays']} holidays, {counts['working_days']} make-up working days"
            )
