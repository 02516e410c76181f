"""Audit history as people read it: one humaniser for every page that shows recorded changes.

The trail stores raw values (choice codes, ISO datetimes in UTC, booleans as text). Given the model the
change is about and its changes (`{field: [old, new]}`, or `{field: value}` for a value set once), this
returns rows of (field label, old, new) in the viewer's language and time zone: the field's verbose name,
a choice's label, a date or time formatted by the locale (no seconds), yes/no for booleans. Values of
personal fields, and any e-mail address or phone number in free text, go through privacy's masking.

    rows = audit_display.change_rows(Ticket, {"status": ["new", "triaged"]}, viewer=request.user)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.template.defaultfilters import yesno
from django.utils import formats, timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import capfirst

from privacy import personal_data
from privacy.personal_data import Viewer

EMPTY = "—"


@dataclass(frozen=True)
class ChangeRow:
    """One changed field: its code (for tests and data attributes), label, and both values as shown."""

    field: str
    label: str
    old: str
    new: str


def model_field(model: type[models.Model], name: str) -> models.Field | None:
    """The model's field called `name` (or whose column is `name`, as `assignee_id`), else None."""
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return next((f for f in model._meta.concrete_fields if f.attname == name), None)


def field_label(field: models.Field | None, name: str) -> str:
    """The field's verbose name with a capital, or the code itself for a name no model knows."""
    if field is None:
        return name
    return str(capfirst(field.verbose_name))


def _when(value: Any, field: models.Field | None) -> str | None:
    """A date or time in the viewer's zone and locale format; None when the value is neither."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        return formats.date_format(value, "DATE_FORMAT")
    elif isinstance(value, str) and (isinstance(field, models.DateTimeField) or "T" in value):
        try:
            moment = parse_datetime(value)
        except ValueError:
            return None
        if moment is None:
            return None
    elif isinstance(value, str) and isinstance(field, models.DateField):
        try:
            day = parse_date(value)
        except ValueError:
            return None
        return formats.date_format(day, "DATE_FORMAT") if day else None
    else:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _boolean(value: Any) -> str | None:
    """Yes or no in the viewer's language (Django's own "yes,no" words)."""
    text = str(value).strip().lower()
    if value is True or value is False or text in ("true", "false"):
        return str(capfirst(yesno(value is True or text == "true")))
    return None


def value_display(field: models.Field | None, name: str, value: Any, *, viewer: Viewer) -> str:
    """One recorded value as this viewer reads it."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if personal_data.is_personal(name):
        return str(personal_data.value_for(name, value, viewer=viewer) or EMPTY)
    if field is not None and field.choices:
        labels = {str(code): label for code, label in field.flatchoices}
        if str(value) in labels:
            return str(labels[str(value)])
    if isinstance(field, models.BooleanField) or isinstance(value, bool):
        shown = _boolean(value)
        if shown is not None:
            return shown
    when = _when(value, field)
    if when is not None:
        return when
    if isinstance(value, list | tuple):
        return ", ".join(value_display(field, name, item, viewer=viewer) for item in value)
    return personal_data.text_for(str(value), viewer=viewer)


def change_rows(
    model: type[models.Model],
    changes: Mapping[str, Any] | None,
    *,
    viewer: Viewer,
    fields: Mapping[str, models.Field] | None = None,
) -> list[ChangeRow]:
    """Rows (label, old, new) for the changes of one `model` object; `fields` describes names that are not
    the model's own (a related object's status, say) with an unbound field carrying label and choices."""
    rows = []
    for name, change in (changes or {}).items():
        field = (fields or {}).get(name) or model_field(model, name)
        old, new = change if isinstance(change, list | tuple) and len(change) == 2 else (None, change)
        rows.append(
            ChangeRow(
                field=name,
                label=field_label(field, name),
                old=value_display(field, name, old, viewer=viewer),
                new=value_display(field, name, new, viewer=viewer),
            )
        )
    return rows
