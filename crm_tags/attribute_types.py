"""Types of the free attribute columns of a customers import: numbers, booleans and dates are stored as
such in `Customer.attributes` (JSON), so rules compare them as numbers (`attributes.vip_level >= 3`).

A column may declare its type in the header, `vip_level:number` (`number`, `boolean`, `date` or
`text`): every cell must then fit, or its row is rejected naming the column. An undeclared column is
inferred from all of its non-empty cells in the file:

- boolean when every cell is `true` or `false` (any case);
- number when every cell is a plain decimal (`3`, `-2.5`) without leading zeros, thousands separators,
  exponent or more than 15 digits before the point: `007`, `0086` and long ids stay text;
- date when every cell is a day written `YYYY-MM-DD` or `YYYY/M/D`, stored as `YYYY-MM-DD` text (JSON
  has no date; ISO text orders by time, so rules compare dates as text);
- text otherwise, stored exactly as read (as before).

Cells are checked while the file streams into the staging table; the values are converted in the one
set-based merge (`merge_expression`), so typing costs no extra pass over the file and no query per row.
"""

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.translation import gettext as _

NUMBER, BOOLEAN, DATE, TEXT = "number", "boolean", "date", "text"
TYPES = (NUMBER, BOOLEAN, DATE, TEXT)

INFERRED_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?", re.ASCII)
DECLARED_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
MAX_NUMBER_TEXT = 40
DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})|([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})", re.ASCII)
INFERRED_BOOLEANS = {"true", "false"}
DECLARED_BOOLEANS = {"true", "false", "yes", "no", "1", "0"}
# jsonb_build_object takes at most 100 arguments: typed keys are merged in groups of this many
_KEYS_PER_OBJECT = 40


class UnknownType(ValueError):
    pass


@dataclass
class AttributeColumn:
    """One free column: its header, the attribute key it fills, its declared type and what its cells
    could all be so far."""

    header: str
    key: str
    declared: str = ""
    could_be: set[str] = field(default_factory=lambda: {BOOLEAN, NUMBER, DATE})
    seen: bool = False

    @property
    def kind(self) -> str:
        """The type its values are stored as."""
        if self.declared:
            return self.declared
        if not self.seen:
            return TEXT
        for kind in (BOOLEAN, NUMBER, DATE):
            if kind in self.could_be:
                return kind
        return TEXT


def column(header: str) -> AttributeColumn:
    """The column a header names: `key` or `key:type`; an unknown type raises UnknownType."""
    key, colon, declared = header.rpartition(":")
    if not colon:
        return AttributeColumn(header=header, key=header)
    declared = declared.strip().lower()
    if declared not in TYPES:
        raise UnknownType(
            _("Unknown column type %(type)r; use number, boolean, date or text (e.g. vip_level:number).")
            % {"type": declared}
        )
    return AttributeColumn(header=header, key=key.strip(), declared=declared)


def _is_day(value: str) -> bool:
    match = DAY.fullmatch(value)
    if match is None:
        return False
    parts = match.groups()[:3] if match.group(1) else match.groups()[3:]
    try:
        date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return False
    return True


def cell_problem(col: AttributeColumn, value: str) -> str | None:
    """Check one non-empty (stripped) cell: the reason it does not fit the declared type, else None; an
    undeclared column narrows what it could be."""
    if col.declared == NUMBER:
        if len(value) > MAX_NUMBER_TEXT or not DECLARED_NUMBER.fullmatch(value):
            return _("Must be a number.")
    elif col.declared == BOOLEAN:
        if value.lower() not in DECLARED_BOOLEANS:
            return _("Must be true or false.")
    elif col.declared == DATE:
        if not _is_day(value):
            return _("Must be a date (YYYY-MM-DD).")
    elif not col.declared:
        col.seen = True
        could = col.could_be
        if BOOLEAN in could and value.lower() not in INFERRED_BOOLEANS:
            could.discard(BOOLEAN)
        if NUMBER in could and not INFERRED_NUMBER.fullmatch(value):
            could.discard(NUMBER)
        if DATE in could and not _is_day(value):
            could.discard(DATE)
    return None


def stored_text(col: AttributeColumn, raw: str) -> str:
    """What is staged for a cell: declared columns trimmed, others as read (the merge trims what it types:
    an undeclared column's type is known only at the end of the file)."""
    return raw.strip() if col.declared and col.declared != TEXT else raw


def merge_expression(columns: list[AttributeColumn], source: str = "attributes") -> tuple[str, list[Any]]:
    """SQL (with its parameters) turning the staged text values of the typed columns into JSON numbers,
    booleans and ISO dates; `source` when every column is text."""
    typed = [c for c in columns if c.kind != TEXT]
    if not typed:
        return source, []
    objects, params = [], []
    for start in range(0, len(typed), _KEYS_PER_OBJECT):
        pairs = []
        for col in typed[start : start + _KEYS_PER_OBJECT]:
            value = f"NULLIF(btrim({source} ->> %s), '')"
            if col.kind == NUMBER:
                pairs.append(f"%s, {value}::numeric")
                params += [col.key, col.key]
            elif col.kind == BOOLEAN:
                pairs.append(f"%s, {value}::boolean")
                params += [col.key, col.key]
            else:
                pairs.append(
                    f"%s, CASE WHEN strpos({value}, '/') > 0 "
                    f"THEN to_char(to_date({value}, 'YYYY/MM/DD'), 'YYYY-MM-DD') ELSE {value} END"
                )
                params += [col.key, col.key, col.key, col.key]
        objects.append(f"jsonb_build_object({', '.join(pairs)})")
    # A key missing from a row (or holding only spaces) builds a JSON null, which is dropped; imported
    # values are never JSON null otherwise.
    return f"jsonb_strip_nulls({source} || {' || '.join(objects)})", params
