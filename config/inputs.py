"""One input-validation layer for hostile input: the API, the pages, forms and imports use the same rules.

What reaches the application is bounded before any of it is used:

- text: no NUL (U+0000, which Postgres cannot store) and no unpaired surrogate (U+D800-U+DFFF, which
  cannot be encoded as UTF-8), wherever it comes from: `InputGuardMiddleware` checks the path, the
  query string and page forms of every request; the API's parsers check every string (keys too) of a
  JSON body and every field of a form body; `config.csv_import.read_rows` checks every cell of an
  import. A new endpoint is covered without doing anything;
- JSON: at most `API_JSON_MAX_BYTES` bytes and `API_JSON_MAX_DEPTH` levels, checked without recursion
  before the body is parsed (so 5,000 nested brackets cost a scan, not a RecursionError); no NaN or
  infinite numbers. `parse_json` applies the same limits to JSON typed into a form;
- numbers and days: `whole_number`, `decimal_number` and `calendar_day` read text strictly (ASCII
  digits: `²` passes `str.isdigit()` but is no number) within bounds that the database and the date
  arithmetic after them can hold; `query_whole_number` and friends answer the API's 400 naming the
  parameter.

A rejected value raises `InvalidInput` (a ValueError naming its field): the API turns it into its
400 error shape (config.api), forms into a field error, importers into a bad row.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, parsers, status

# --- bounds ---------------------------------------------------------------------------------------

INT32_MAX = 2**31 - 1  # Django's IntegerField / PositiveIntegerField on Postgres
INT64_MAX = 2**63 - 1  # BigIntegerField
# Days anyone may mean: date arithmetic a few thousand days either side stays inside Python's and
# Postgres's ranges (year 1 minus a window is an OverflowError; 9999-12-31 plus one day too).
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)
MAX_NUMBER_TEXT = 40  # characters of a number's text read at all

DEFAULT_JSON_MAX_DEPTH = 64
DEFAULT_JSON_MAX_BYTES = 2 * 1024 * 1024

# NUL and the surrogate code points (only unpaired ones survive into a Python str).
BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


class InvalidInput(ValueError):
    """A value refused by the input layer; `str()` is the reason, fit to show beside `field`."""

    def __init__(self, message: str, *, code: str = "invalid", field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    def at(self, field: str) -> InvalidInput:
        """The same refusal, named by (or nested under) `field`."""
        name = _join(field, self.field) if self.field else field
        return InvalidInput(self.message, code=self.code, field=name)

    def as_api_error(self) -> exceptions.ValidationError:
        """DRF's 400 in the API's error shape (`{"detail", "errors": [{field, message, code}]}`)."""
        detail = exceptions.ErrorDetail(self.message, code=self.code)
        return exceptions.ValidationError({self.field: [detail]} if self.field else [detail])

    def as_form_error(self) -> DjangoValidationError:
        """A Django form field error (raise it from `clean_<field>`)."""
        return DjangoValidationError(self.message, code=self.code)


def _join(prefix: str, name: str) -> str:
    if not prefix:
        return name
    return f"{prefix}{name}" if name.startswith("[") else f"{prefix}.{name}"


# --- text -----------------------------------------------------------------------------------------


def text_problem(value: str) -> InvalidInput | None:
    """Why `value` may not be stored as text (None when it may)."""
    found = BAD_TEXT.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return InvalidInput(_("Text may not contain NUL characters (U+0000)."), code="null_characters")
    return InvalidInput(
        _("Text may not contain unpaired surrogate characters (U+D800 to U+DFFF)."),
        code="surrogate_characters",
    )


def check_text(value: str, *, field: str = "") -> str:
    """`value` unchanged, or InvalidInput naming `field` when it holds NUL or an unpaired surrogate."""
    problem = text_problem(value)
    if problem is not None:
        raise problem.at(field) if field else problem
    return value


def check_fields(items: Iterable[tuple[str, Any]]) -> None:
    """Check the names and text values of form-like data (a QueryDict's `lists()`, headers...)."""
    for name, values in items:
        check_text(name, field="(name)")
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str):
                check_text(value, field=name)


# --- JSON -----------------------------------------------------------------------------------------

# A JSON string (possessive, so an unterminated one cannot make the scan backtrack) or a bracket.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}:,]', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# What JSON text must hold for a parsed value to have bad text or a non-finite number: a \u escape of NUL
# or of a surrogate (raw ones are not valid JSON or UTF-8), NaN, Infinity or a huge number. Only then
# is every value walked.
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])|NaN|Infinity|[eE]\+?[0-9]{3}|[0-9]{300}")
_PATH_PARTS_SHOWN = 8  # a path 64 levels deep names its first levels only


def json_max_depth() -> int:
    return getattr(settings, "API_JSON_MAX_DEPTH", DEFAULT_JSON_MAX_DEPTH)


def json_max_bytes() -> int:
    return getattr(settings, "API_JSON_MAX_BYTES", DEFAULT_JSON_MAX_BYTES)


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether JSON text nests deeper than `max_depth`: a scan of its brackets outside strings, no recursion."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for char in _BRACKET.findall(_JSON_STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _where_too_deep(text: str, max_depth: int) -> str:
    """The path of the first value nested deeper than `max_depth` (`definition.all[0].not`)."""
    path: list[str | int] = []  # per open container: the key or index being read
    expecting_key: list[bool] = []
    for token in _JSON_TOKEN.finditer(text):
        value = token.group()
        if value in "[{":
            if len(path) >= max_depth:
                break
            path.append("" if value == "{" else 0)
            expecting_key.append(value == "{")
        elif value in "]}":
            if path:
                path.pop()
                expecting_key.pop()
        elif value == ",":
            if path and isinstance(path[-1], int):
                path[-1] += 1
            elif expecting_key:
                expecting_key[-1] = True
        elif value == ":":
            if expecting_key:
                expecting_key[-1] = False
        elif expecting_key and expecting_key[-1]:
            try:
                path[-1] = json.loads(value)
            except ValueError:
                path[-1] = value.strip('"')
    where = ""
    for part in path[:_PATH_PARTS_SHOWN]:
        where = f"{where}[{part}]" if isinstance(part, int) else _join(where, str(part))
    return where + ("..." if len(path) > _PATH_PARTS_SHOWN else "")


def _walk_problems(data: Any, field: str) -> None:
    """Raise InvalidInput at the first string (or key) with bad text, or number out of range."""
    stack: list[tuple[str, Any]] = [(field, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            check_text(value, field=path)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidInput(
                    _("Numbers must be finite (no NaN, Infinity or values beyond 1e308)."),
                    code="invalid_number",
                    field=path,
                )
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                check_text(key, field=_join(path, "(key)"))
                stack.append((_join(path, key), item))
        elif isinstance(value, list):
            for index in range(len(value) - 1, -1, -1):
                stack.append((f"{path}[{index}]", value[index]))


def parse_json(text: str | bytes, *, field: str = "", max_depth: int | None = None) -> Any:
    """JSON text as Python values, within the depth limit, with text and numbers checked.

    Raises InvalidInput naming where the problem is (under `field`), or for text that is not JSON.
    """
    depth = json_max_depth() if max_depth is None else max_depth
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(_("The body is not UTF-8 text."), code="parse_error", field=field) from exc
    if _too_deep(text, depth):
        raise InvalidInput(
            _("JSON may be nested at most %(depth)d levels deep.") % {"depth": depth},
            code="too_deep",
            field=_join(field, _where_too_deep(text, depth)) if field else _where_too_deep(text, depth),
        )
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
        raise InvalidInput(
            _("Not valid JSON: %(reason)s.") % {"reason": exc}, code="parse_error", field=field
        ) from exc
    if _SUSPECT.search(text):
        _walk_problems(data, field)
    return data


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(_("The request body may be at most %(limit)d bytes.") % {"limit": limit})


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the input layer's limits: size, depth (no recursion), text, numbers."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = json_max_bytes()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(limit)
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(
                _("The body is not %(encoding)s text.") % {"encoding": encoding}
            ) from exc
        try:
            return parse_json(text)
        except InvalidInput as exc:
            if exc.code == "parse_error":
                raise exceptions.ParseError(exc.message) from exc
            raise exc.as_api_error() from exc


def _checked_form(data: Any, files: Any = None) -> None:
    try:
        check_fields(data.lists())
        if files is not None:
            for name, uploads in files.lists():
                for upload in uploads:
                    check_text(upload.name or "", field=name)
    except InvalidInput as exc:
        raise exc.as_api_error() from exc


class FormParser(parsers.FormParser):
    """DRF's form parser; every field name and value checked for NUL."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        _checked_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser; every field name, value and file name checked for NUL."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        _checked_form(parsed.data, parsed.files)
        return parsed


# --- requests -------------------------------------------------------------------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def rejected_response(request: HttpRequest, error: InvalidInput) -> HttpResponse:
    """400 naming the field: the API's error shape under /api/, the 400 page elsewhere."""
    if _is_api(request):
        item = {"message": error.message, "code": error.code}
        if error.field:
            item["field"] = error.field
        summary = f"{error.field}: {error.message}" if error.field else error.message
        return JsonResponse({"detail": summary, "errors": [item]}, status=400)
    return render(request, "400.html", {"error": error}, status=400)


class InputGuardMiddleware:
    """Refuse NUL (and unpaired surrogates) in the path, the query string and page forms with a 400 that
    names the parameter, before any view, selector or query sees them; drop cookies holding them.

    API bodies are checked by the API's parsers (config.inputs.JSONParser and the form parsers), which
    DRF only runs when a view reads `request.data`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # A cookie is not typed by anyone: one holding NUL (`"\000"` unquotes to it) is dropped, so the
        # session look-up never sends it to the database, and the browser is not locked out.
        for name in [n for n, v in request.COOKIES.items() if BAD_TEXT.search(n) or BAD_TEXT.search(v)]:
            del request.COOKIES[name]
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict
    ) -> HttpResponse | None:
        try:
            check_text(request.path_info, field="path")
            check_fields(request.GET.lists())
            if (
                request.method == "POST"
                and not _is_api(request)
                and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                check_fields(request.POST.lists())
        except InvalidInput as exc:
            return rejected_response(request, exc)
        return None


# --- numbers and days -----------------------------------------------------------------------------


def whole_number(value: Any, *, minimum: int = 0, maximum: int = INT32_MAX) -> int:
    """An integer given as an int or as ASCII digits (an optional sign), from `minimum` to `maximum`."""
    if isinstance(value, bool):
        raise InvalidInput(_("Enter a whole number."), code="invalid_number")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if len(text) > MAX_NUMBER_TEXT or not WHOLE.fullmatch(text):
            raise InvalidInput(_("Enter a whole number."), code="invalid_number")
        number = int(text)
    if not minimum <= number <= maximum:
        raise InvalidInput(
            _("Enter a whole number from %(minimum)s to %(maximum)s.")
            % {"minimum": minimum, "maximum": maximum},
            code="out_of_range",
        )
    return number


def decimal_number(
    value: Any, *, minimum: Decimal | int = 0, maximum: Decimal | int = 10**12, places: int = 2
) -> Decimal:
    """A decimal given as a number or as ASCII text (`1234.5`), finite, with at most `places` decimals,
    from `minimum` to (less than) `maximum`."""
    if isinstance(value, bool):
        raise InvalidInput(_("Enter a number."), code="invalid_number")
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value)) if math.isfinite(value) else Decimal("NaN")
    else:
        text = str(value).strip()
        if len(text) > MAX_NUMBER_TEXT or not DECIMAL.fullmatch(text):
            raise InvalidInput(_("Enter a number."), code="invalid_number")
        try:
            number = Decimal(text)
        except InvalidOperation as exc:
            raise InvalidInput(_("Enter a number."), code="invalid_number") from exc
    if not number.is_finite():
        raise InvalidInput(_("Enter a number."), code="invalid_number")
    if number.as_tuple().exponent < -places:
        raise InvalidInput(
            _("Use at most %(places)d decimal places.") % {"places": places}, code="too_many_decimals"
        )
    if not minimum <= number < maximum:
        raise InvalidInput(
            _("Enter a number from %(minimum)s to less than %(maximum)s.")
            % {"minimum": minimum, "maximum": maximum},
            code="out_of_range",
        )
    return number


def day_in_range(day: date, *, earliest: date = EARLIEST_DAY, latest: date = LATEST_DAY) -> date:
    """`day` unchanged, or InvalidInput when it is outside the days anyone may mean."""
    checked = day.date() if isinstance(day, datetime) else day
    if not earliest <= checked <= latest:
        raise InvalidInput(
            _("Enter a day from %(earliest)s to %(latest)s.")
            % {"earliest": earliest.isoformat(), "latest": latest.isoformat()},
            code="out_of_range",
        )
    return day


def calendar_day(value: Any, *, earliest: date = EARLIEST_DAY, latest: date = LATEST_DAY) -> date:
    """A day given as a date or as `YYYY-MM-DD`, from `earliest` to `latest`."""
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        text = str(value).strip()
        try:
            if not DAY.fullmatch(text):
                raise ValueError(text)
            value = date.fromisoformat(text)
        except ValueError as exc:
            raise InvalidInput(_("Enter a date as YYYY-MM-DD."), code="invalid_date") from exc
    return day_in_range(value, earliest=earliest, latest=latest)


def moment(value: Any, *, earliest: date = EARLIEST_DAY, latest: date = LATEST_DAY) -> datetime:
    """An aware instant given as ISO 8601 (a plain date is midnight; naive values are in the default time
    zone), on a day from `earliest` to `latest`."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if len(text) > 64 or not text.isascii():
            raise InvalidInput(_("Enter an ISO 8601 date or date-time."), code="invalid_datetime")
        try:
            parsed = (
                datetime.combine(date.fromisoformat(text), time.min)
                if len(text) == 10
                else datetime.fromisoformat(text)
            )
        except ValueError as exc:
            raise InvalidInput(_("Enter an ISO 8601 date or date-time."), code="invalid_datetime") from exc
    day_in_range(parsed.date(), earliest=earliest, latest=latest)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def in_range_validator(
    *, earliest: date = EARLIEST_DAY, latest: date = LATEST_DAY
) -> Callable[[date | None], None]:
    """A field validator (Django forms and DRF serializers alike) for days anyone may mean."""

    def validate(value: date | None) -> None:
        if value is None:
            return
        try:
            day_in_range(value, earliest=earliest, latest=latest)
        except InvalidInput as exc:
            raise exc.as_form_error() from exc

    return validate


day_validator = in_range_validator()


# --- query parameters -----------------------------------------------------------------------------


def query_value(
    params: Mapping[str, Any], name: str, parse: Callable[[str], Any], default: Any = None
) -> Any:
    """A query parameter read with `parse` (None or `default` when absent or empty); a bad one is the
    API's 400 naming the parameter."""
    if hasattr(params, "getlist") and len(params.getlist(name)) > 1:
        raise InvalidInput(_("Give this parameter once."), code="repeated", field=name).as_api_error()
    raw = params.get(name)
    # empty means absent; other "space" characters (a control character such as \x1c counts as one for
    # str.strip) are a value, and a wrong one
    if raw is None or str(raw).strip(" \t\r\n") == "":
        return default
    try:
        return parse(str(raw))
    except InvalidInput as exc:
        raise exc.at(name).as_api_error() from exc


def query_whole_number(
    params: Mapping[str, Any],
    name: str,
    *,
    default: int | None = None,
    minimum: int = 0,
    maximum: int = INT64_MAX,
) -> int | None:
    return query_value(
        params, name, lambda raw: whole_number(raw, minimum=minimum, maximum=maximum), default=default
    )


def query_day(params: Mapping[str, Any], name: str, *, default: date | None = None) -> date | None:
    return query_value(params, name, calendar_day, default=default)


def query_boolean(params: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    """`true`/`false` (or `1`/`0`, any case); anything else is the API's 400 naming the parameter."""

    def parse(raw: str) -> bool:
        value = raw.strip().lower()
        if value not in ("true", "false", "1", "0"):
            raise InvalidInput(_("Write true or false."), code="invalid_boolean")
        return value in ("true", "1")

    return query_value(params, name, parse, default=default)


def query_choice(params: Mapping[str, Any], name: str, choices: Iterable[str], *, default: str = "") -> str:
    allowed = list(choices)

    def parse(raw: str) -> str:
        if raw not in allowed:
            raise InvalidInput(
                _("Choose one of: %(choices)s.") % {"choices": ", ".join(allowed)}, code="invalid_choice"
            )
        return raw

    return query_value(params, name, parse, default=default)


# --- JSON types as the schema says ------------------------------------------------------------------------

_STRICT_TYPES: tuple[tuple[type, tuple[type, ...], str], ...] = ()


def _from_json(field: Any) -> bool:
    """Whether the value comes from a JSON body (types are the sender's), not a form or a query string
    (where every value is text)."""
    root = getattr(field, "root", None)
    data = getattr(root, "initial_data", None)
    return data is not None and not isinstance(data, QueryDict)


def install_strict_json_types() -> None:
    """In a JSON body a text field takes a string, a yes/no field true or false, a whole-number field a
    whole number: what the OpenAPI schema says. DRF would turn 2705 into "2705" and 0.0 into false, so a
    client's mistake would pass unnoticed. Forms and query strings keep reading text."""
    from rest_framework import fields

    global _STRICT_TYPES
    if _STRICT_TYPES:
        return
    _STRICT_TYPES = (
        (fields.CharField, (str,), gettext_lazy("Must be text.")),
        (fields.BooleanField, (bool,), gettext_lazy("Must be true or false.")),
        (fields.IntegerField, (int,), gettext_lazy("Must be a whole number.")),
    )
    for cls, accepted, message in _STRICT_TYPES:
        original = cls.to_internal_value

        def to_internal_value(self, data, _original=original, _accepted=accepted, _message=message):
            wrong = not isinstance(data, _accepted) or (bool not in _accepted and isinstance(data, bool))
            if wrong and _from_json(self):
                raise fields.ValidationError(str(_message), code="invalid_type")
            return _original(self, data)

        cls.to_internal_value = to_internal_value
