"""China's statutory holidays and make-up working days (调休) for one year, from `chinese-calendar`.

The package carries the State Council's published schedule per year (a new release follows each
November's announcement) and has nothing for a year not yet published, so a year it does not know is
refused rather than guessed: the rule-based calendars of other packages (e.g. `holidays`) list next
year's festivals without the make-up days, which would silently move deadlines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chinese_calendar import constants

FIRST_YEAR = 2004  # the package's first year


@dataclass(frozen=True)
class StatutoryYear:
    """A year's days off (every day of each holiday span, weekends included) and make-up working days."""

    year: int
    holidays: list[tuple[dt.date, str]]
    working_days: list[tuple[dt.date, str]]


def _names() -> dict[str, str]:
    # English name → "English 中文" (the package keys its dates by the English name)
    return {h.value: f"{h.value} {h.chinese}" for h in constants.Holiday}


def known_years() -> list[int]:
    """The years the installed package has a published schedule for."""
    return sorted({day.year for day in constants.holidays} | {day.year for day in constants.workdays})


def statutory_year(year: int) -> StatutoryYear | None:
    """The year's schedule, or None when the installed package has none for it."""
    if year not in known_years():
        return None
    names = _names()
    holidays = sorted(
        (day, names.get(name, name)) for day, name in constants.holidays.items() if day.year == year
    )
    working = sorted(
        (day, names.get(name, name)) for day, name in constants.workdays.items() if day.year == year
    )
    return StatutoryYear(year=year, holidays=holidays, working_days=working)
