"""The cells of the campaign CSV imports: numbers, channels and moments, each refused with a reason."""

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from campaigns.models import channel_validator
from campaigns.utm import normalise
from config.csv_import import ErrorCollector
from config.inputs import DECIMAL, INT64_MAX, InvalidInput, decimal_number, whole_number


def _number_problem(text: str, exc: InvalidInput) -> str:
    """The reason shown for a refused number cell: text that is no number at all (`NaN`, `inf`, `abc`, an
    empty cell) must be a number; a number out of range or with too many decimals says so."""
    return str(exc) if DECIMAL.fullmatch(text) else _("Must be a number.")


def _parse_decimal(value: str, column: str, row: int, errors: ErrorCollector) -> Decimal | None:
    """A money cell: ASCII digits (thousands separated by commas allowed), 0 to under 10^12, 2 places."""
    text = (value or "").strip().replace(",", "")
    try:
        return decimal_number(text, minimum=0, maximum=10**12, places=2)
    except InvalidInput as exc:
        errors.add(row, column, _number_problem(text, exc))
        return None


def _parse_count(
    value: str, column: str, row: int, errors: ErrorCollector, *, maximum: int = INT64_MAX
) -> int | None:
    """A count cell: ASCII digits (thousands separated by commas allowed), from 0 to what its column holds."""
    text = (value or "").strip().replace(",", "")
    try:
        return whole_number(text, minimum=0, maximum=maximum)
    except InvalidInput as exc:
        errors.add(row, column, _number_problem(text, exc))
        return None


def _parse_channel(value: str, row: int, errors: ErrorCollector) -> str | None:
    channel = normalise(value).replace(" ", "_")
    try:
        channel_validator(channel)
    except ValidationError:
        errors.add(row, "channel", _("Use lower-case letters, digits, dots, hyphens and underscores."))
        return None
    if len(channel) > 40:
        errors.add(row, "channel", _("At most 40 characters."))
        return None
    return channel


def _parse_moment(value: str, row: int, errors: ErrorCollector) -> dt.datetime | None:
    text = (value or "").strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = dt.datetime.combine(day, dt.time()) if day else None
    except ValueError:
        moment = None
    if moment is None:
        errors.add(row, "occurred_at", _("Not a date and time (use 2026-06-18T10:30:00+08:00)."))
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment
