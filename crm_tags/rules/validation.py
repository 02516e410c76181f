"""The tag rule language's vocabulary and validation: every error named by its path in the tree
(`all[1].op`). The compiler is in compiler.py."""

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from config.inputs import moment
from crm_tags.value.rfm import SEGMENTS

GROUPS = ("all", "any", "not")
TEXT_FIELDS = ("external_id", "name", "email", "phone", "city", "gender", "source_channel")
DATE_FIELDS = ("birth_date",)
DATETIME_FIELDS = ("signup_at",)
BUILTIN_FIELDS = TEXT_FIELDS + DATE_FIELDS + DATETIME_FIELDS
# Computed attributes (crm_tags.value): rule name -> column of the stored CustomerValue. They read the
# values stored by the last fit (computed as of its day), whatever the rule's as_of.
COMPUTED_FIELDS = {
    "rfm_segment": "segment",
    "recency_score": "recency_score",
    "frequency_score": "frequency_score",
    "monetary_score": "monetary_score",
    "expected_purchases_90d": "expected_purchases_90d",
    "p_alive": "p_alive",
    "expected_spend": "expected_spend",
    "clv_12m": "clv_12m",
    "lead_score": "lead_score",
}
ATTR_OPS = ("=", "!=", ">", ">=", "<", "<=", "in", "not_in", "contains", "is_null", "between")
NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=", "between")
AGGS = ("count", "sum", "avg", "min", "max", "days_since_last")
EVENT_FIELDS = ("amount",)
ATTRIBUTE_KEY = re.compile(r"^attributes\.([A-Za-z0-9_\-]{1,64})$")
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_DEPTH = 20
MAX_LIST = 1000
MAX_WINDOW_DAYS = 3660
# Event values: days since the last event go up to a century either way (as_of minus them must stay a
# date; a negative number reads events dated after as_of);
# other aggregates compare with numbers a count or an amount can reach.
MAX_DAYS_SINCE = 36600
MAX_EVENT_VALUE = 10**15
SQL_OPS = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


# What a rule reads per (event type, window): column -> (SQL over raw events, customer-totals column).
AGGREGATES: dict[str, tuple[str, str]] = {
    "n": ("count(*)", "events"),
    "s": ("sum(amount)", "amount_sum"),
    "ac": ("count(amount)", "amount_count"),
    "mn": ("min(amount)", "amount_min"),
    "mx": ("max(amount)", "amount_max"),
    "last": ("max(occurred_at)", "last_at"),
}


@dataclass(frozen=True)
class RuleError:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class RuleInvalid(ValueError):
    """A rule that does not validate; `errors` name each problem's path in the tree."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.path or '(root)'}: {e.message}" for e in errors))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parse_datetime_value(value: str) -> datetime:
    """ISO 8601 date-time, or a plain date (midnight); naive values are in the default time zone."""
    if len(value) == 10:
        parsed = datetime.combine(date.fromisoformat(value), time.min)
    else:
        parsed = datetime.fromisoformat(value)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def _check_scalar(kind: str, value: Any, op: str) -> str | None:
    """None when `value` suits a field of `kind` (text/date/datetime/json), else the reason."""
    if kind == "text":
        return None if isinstance(value, str) else _("expects a text value")
    if kind == "segment":
        if value in SEGMENTS:
            return None
        return _("expects an RFM segment: one of %(segments)s") % {"segments": ", ".join(SEGMENTS)}
    if kind == "number":
        ok = _is_number(value) and math.isfinite(value) and abs(value) <= MAX_EVENT_VALUE
        return None if ok else _("expects a number from -10^15 to 10^15")
    if kind in ("date", "datetime"):
        if not isinstance(value, str):
            return _("expects a date as text (YYYY-MM-DD)")
        try:
            if kind == "date":
                date.fromisoformat(value)
            else:
                parse_datetime_value(value)
        except ValueError:
            return (
                _("is not a valid ISO 8601 date")
                if kind == "date"
                else _("is not a valid ISO 8601 date-time")
            )
        return None
    # a free attribute (JSON): numbers and text compare; booleans only for equality
    if isinstance(value, bool):
        return None if op in ("=", "!=", "in", "not_in") else _("booleans only work with = != in not_in")
    if _is_number(value) or isinstance(value, str):
        return None
    return _("expects a number, text or boolean")


def _validate_attr(node: dict, path: str, errors: list[RuleError]) -> None:
    for key in node:
        if key not in ("attr", "op", "value"):
            errors.append(
                RuleError(
                    _join(path, key), _("unknown field %(key)r in an attribute condition") % {"key": key}
                )
            )
    name = node.get("attr")
    kind = ""
    if not isinstance(name, str):
        errors.append(RuleError(_join(path, "attr"), _("must be a field name")))
    elif name in TEXT_FIELDS:
        kind = "text"
    elif name in DATE_FIELDS:
        kind = "date"
    elif name in DATETIME_FIELDS:
        kind = "datetime"
    elif name in COMPUTED_FIELDS:
        kind = "segment" if name == "rfm_segment" else "number"
    elif ATTRIBUTE_KEY.match(name):
        kind = "json"
    else:
        errors.append(
            RuleError(
                _join(path, "attr"),
                _("unknown field %(name)r; use one of %(fields)s or attributes.<key>")
                % {"name": name, "fields": ", ".join((*BUILTIN_FIELDS, *COMPUTED_FIELDS))},
            )
        )
    op = node.get("op")
    if op not in ATTR_OPS:
        errors.append(
            RuleError(
                _join(path, "op"),
                _("unknown operator %(op)r; use one of %(ops)s") % {"op": op, "ops": " ".join(ATTR_OPS)},
            )
        )
        return
    if "value" not in node:
        errors.append(RuleError(_join(path, "value"), _("is required")))
        return
    value = node["value"]
    vpath = _join(path, "value")
    if op == "is_null":
        if not isinstance(value, bool):
            errors.append(RuleError(vpath, _("must be true or false for is_null")))
        return
    if op == "contains" and kind in ("date", "datetime", "segment", "number"):
        errors.append(RuleError(_join(path, "op"), _("contains only works on text and attributes")))
        return
    if op == "contains":
        if not isinstance(value, str):
            errors.append(RuleError(vpath, _("must be text for contains")))
        return
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            errors.append(RuleError(vpath, _("must be a non-empty list for %(op)s") % {"op": op}))
            return
        if len(value) > MAX_LIST:
            errors.append(RuleError(vpath, _("may hold at most %(n)d values") % {"n": MAX_LIST}))
            return
        for index, item in enumerate(value):
            reason = _check_scalar(kind, item, op) if kind else None
            if reason:
                errors.append(RuleError(f"{vpath}[{index}]", reason))
        return
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            errors.append(RuleError(vpath, _("must be a list of two values [low, high] for between")))
            return
        for index, item in enumerate(value):
            reason = _check_scalar(kind, item, op) if kind else None
            if reason:
                errors.append(RuleError(f"{vpath}[{index}]", reason))
        if kind == "json" and not errors and (_is_number(value[0]) != _is_number(value[1])):
            errors.append(RuleError(vpath, _("both ends must be numbers or both text")))
        return
    reason = _check_scalar(kind, value, op) if kind else None
    if reason:
        errors.append(RuleError(vpath, reason))


def _validate_event(node: dict, path: str, errors: list[RuleError]) -> None:
    allowed = ("event", "agg", "field", "window_days", "op", "value")
    for key in node:
        if key not in allowed:
            errors.append(
                RuleError(_join(path, key), _("unknown field %(key)r in an event condition") % {"key": key})
            )
    event = node.get("event")
    if not isinstance(event, str) or not EVENT_TYPE.match(event):
        errors.append(RuleError(_join(path, "event"), _("must be an event type such as page_view or order")))
    agg = node.get("agg")
    if agg not in AGGS:
        errors.append(
            RuleError(
                _join(path, "agg"),
                _("unknown aggregate %(agg)r; use one of %(aggs)s") % {"agg": agg, "aggs": "|".join(AGGS)},
            )
        )
    if "field" in node:
        if agg in ("count", "days_since_last"):
            errors.append(RuleError(_join(path, "field"), _("%(agg)s takes no field") % {"agg": agg}))
        elif node["field"] not in EVENT_FIELDS:
            errors.append(
                RuleError(
                    _join(path, "field"), _("unknown field %(field)r; use amount") % {"field": node["field"]}
                )
            )
    elif agg in ("sum", "avg", "min", "max"):
        errors.append(RuleError(_join(path, "field"), _("%(agg)s needs a field (amount)") % {"agg": agg}))
    if "window_days" in node:
        window = node["window_days"]
        if agg == "days_since_last":
            errors.append(RuleError(_join(path, "window_days"), _("days_since_last takes no window")))
        elif not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= MAX_WINDOW_DAYS:
            errors.append(
                RuleError(
                    _join(path, "window_days"),
                    _("must be a whole number of days from 1 to %(n)d") % {"n": MAX_WINDOW_DAYS},
                )
            )
    op = node.get("op")
    if op not in NUMERIC_OPS:
        errors.append(
            RuleError(
                _join(path, "op"),
                _("unknown operator %(op)r; use one of %(ops)s") % {"op": op, "ops": " ".join(NUMERIC_OPS)},
            )
        )
        return
    if "value" not in node:
        errors.append(RuleError(_join(path, "value"), _("is required")))
        return
    value = node["value"]
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)):
            errors.append(RuleError(_join(path, "value"), _("must be a list of two numbers [low, high]")))
            return
        ends = [(f"{_join(path, 'value')}[{i}]", v) for i, v in enumerate(value)]
    elif not _is_number(value):
        errors.append(RuleError(_join(path, "value"), _("must be a number")))
        return
    else:
        ends = [(_join(path, "value"), value)]
    for where, number in ends:
        if agg == "days_since_last" and not (math.isfinite(number) and abs(number) <= MAX_DAYS_SINCE):
            errors.append(
                RuleError(where, _("must be a number of days from -%(n)d to %(n)d") % {"n": MAX_DAYS_SINCE})
            )
        elif not (math.isfinite(number) and -MAX_EVENT_VALUE <= number <= MAX_EVENT_VALUE):
            errors.append(RuleError(where, _("must be a number from -10^15 to 10^15")))


def _validate_tag(node: dict, path: str, errors: list[RuleError], known_tags: set[str] | None) -> None:
    for key in node:
        if key not in ("tag", "has"):
            errors.append(
                RuleError(_join(path, key), _("unknown field %(key)r in a tag condition") % {"key": key})
            )
    slug = node.get("tag")
    if not isinstance(slug, str) or not slug:
        errors.append(RuleError(_join(path, "tag"), _("must be a tag slug")))
    elif known_tags is not None and slug not in known_tags:
        errors.append(RuleError(_join(path, "tag"), _("unknown tag %(slug)r") % {"slug": slug}))
    if "has" in node and not isinstance(node["has"], bool):
        errors.append(RuleError(_join(path, "has"), _("must be true or false")))


def _validate_node(
    node: Any, path: str, depth: int, errors: list[RuleError], known_tags: set[str] | None
) -> None:
    if depth > MAX_DEPTH:
        errors.append(RuleError(path, _("is nested deeper than %(n)d levels") % {"n": MAX_DEPTH}))
        return
    if not isinstance(node, dict):
        errors.append(RuleError(path, _("must be an object (a group or a condition)")))
        return
    kinds = [k for k in ("all", "any", "not", "attr", "event", "tag") if k in node]
    if len(kinds) != 1:
        message = (
            _("must have exactly one of all, any, not, attr, event, tag")
            if not kinds
            else _("mixes %(kinds)s; use one per object") % {"kinds": ", ".join(kinds)}
        )
        errors.append(RuleError(path, message))
        return
    kind = kinds[0]
    if kind in ("all", "any"):
        for key in node:
            if key != kind:
                errors.append(
                    RuleError(_join(path, key), _("unknown field %(key)r in a group") % {"key": key})
                )
        children = node[kind]
        if not isinstance(children, list) or not children:
            errors.append(RuleError(_join(path, kind), _("must be a non-empty list of conditions")))
            return
        for index, child in enumerate(children):
            _validate_node(child, f"{_join(path, kind)}[{index}]", depth + 1, errors, known_tags)
    elif kind == "not":
        for key in node:
            if key != "not":
                errors.append(
                    RuleError(_join(path, key), _("unknown field %(key)r in a not group") % {"key": key})
                )
        _validate_node(node["not"], _join(path, "not"), depth + 1, errors, known_tags)
    elif kind == "attr":
        _validate_attr(node, path, errors)
    elif kind == "event":
        _validate_event(node, path, errors)
    else:
        _validate_tag(node, path, errors, known_tags)


def validate_rule(definition: Any, *, known_tags: set[str] | None = None) -> list[RuleError]:
    """Every problem of a rule tree, each with its path (`all[1].op`); empty when the rule is valid.

    A rule that validates also compiles: it is compiled once here (no query runs), so a value the
    checks above let through but the statement cannot hold is refused when saved, not when built.
    """
    from crm_tags.rules.compiler import compile_rule  # the compiler reads this module's vocabulary

    errors: list[RuleError] = []
    _validate_node(definition, "", 0, errors, known_tags)
    if not errors:
        try:
            compile_rule(definition, with_values=True)
        except (ArithmeticError, ValueError, TypeError) as exc:
            errors.append(RuleError("", _("cannot be evaluated: %(reason)s") % {"reason": exc}))
    return errors


def parse_as_of(value: Any) -> datetime:
    """The moment a rule is evaluated at (`as_of`): ISO 8601 on a day from 1900 to 2999 (windows and days
    since the last event are subtracted from it). Raises InvalidInput."""
    return moment(value)


def rule_dependencies(definition: Any) -> list[str]:
    """The slugs of the tags a (valid) rule reads, sorted."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        if "tag" in node and isinstance(node["tag"], str):
            found.add(node["tag"])
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                for child in node[key]:
                    walk(child)
        if "not" in node:
            walk(node["not"])

    walk(definition)
    return sorted(found)
