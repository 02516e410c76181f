"""The API's shared conventions: one error shape, one pagination shape."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler


class StandardPagination(PageNumberPagination):
    """`{count, next, previous, results}` with `?page=` and `?page_size=` (at most 500)."""

    page_size_query_param = "page_size"
    max_page_size = 500


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _flatten(detail: Any, field: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error detail into a flat list of `{field, message, code}`."""
    if isinstance(detail, dict):
        items: list[dict[str, str]] = []
        for key, value in detail.items():
            name = (
                field if key in ("non_field_errors", "detail") else (f"{field}.{key}" if field else str(key))
            )
            items.extend(_flatten(value, name))
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                items.extend(_flatten(value, f"{field}[{index}]" if field else f"[{index}]"))
            else:
                items.extend(_flatten(value, field))
        return items
    entry = {"message": str(detail), "code": getattr(detail, "code", "error")}
    if field:
        entry["field"] = field
    return [entry]


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every API error answers `{"detail": summary, "errors": [{message, code, field?}]}`.

    Errors that already carry a list of structured errors (imports: row/column, rules: path)
    pass it through as `errors` unchanged, so one shape holds everywhere.
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        data.setdefault("detail", _summary(data["errors"]))
        return response
    errors = _flatten(data)
    response.data = {"detail": _summary(errors), "errors": errors}
    return response


def _summary(errors: list[dict]) -> str:
    if not errors:
        return "Error."
    first = errors[0]
    where = first.get("field") or first.get("path")
    if "row" in first:
        where = f"row {first['row']}" + (f", {first['column']}" if first.get("column") else "")
    return f"{where}: {first['message']}" if where else str(first["message"])
