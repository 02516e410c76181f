"""The API's shared conventions: one error shape, one pagination shape."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.inputs import INT32_MAX, InvalidInput, query_whole_number


class StandardPagination(PageNumberPagination):
    """`{count, next, previous, results}` with `?page=` (from 1; past the end is 404) and `?page_size=`
    (1 to 500); any other value of either is a 400 naming it."""

    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()  # `?page=last` is no page number: the schema says integer

    def get_page_size(self, request: Any) -> int:
        return query_whole_number(
            request.query_params,
            self.page_size_query_param,
            default=self.page_size,
            minimum=1,
            maximum=self.max_page_size,
        )

    def get_page_number(self, request: Any, paginator: Any) -> int:
        return query_whole_number(
            request.query_params, self.page_query_param, default=1, minimum=1, maximum=INT32_MAX
        )

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": INT32_MAX}
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the limit."
    default_code = "request_too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _flatten(detail: Any, field: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error detail into a flat list of `{field, message, code}`."""
    if isinstance(detail, dict):
        items: list[dict[str, str]] = []
        for key, value in detail.items():
            if isinstance(key, int):  # a list serializer's errors by position: `variants[0]`
                name = f"{field}[{key}]"
            else:
                name = (
                    field
                    if key in ("non_field_errors", "detail")
                    else (f"{field}.{key}" if field else str(key))
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
    elif isinstance(exc, InvalidInput):
        exc = exc.as_api_error()
    elif isinstance(exc, DjangoValidationError):
        # a model's or service's validation that a view did not translate is still the caller's error
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ValidationError(_("The request was refused: %(reason)s") % {"reason": exc})
    response = exception_handler(exc, context)
    if response is None:
        return None
    if getattr(exc, "etag", None):  # a refused edit (config.concurrency) names the current version
        response["ETag"] = exc.etag
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


# --- Django's own error answers (no view, or before one): the error shape under /api/ ---------------


def _api_error(request: HttpRequest, status_code: int, message: str, code: str) -> HttpResponse | None:
    if not request.path_info.startswith("/api/"):
        return None
    return JsonResponse(
        {"detail": message, "errors": [{"message": message, "code": code}]}, status=status_code
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: a request Django refused (too many fields, a disallowed host, a body too large...)."""
    if isinstance(exception, RequestDataTooBig):
        response = _api_error(
            request, 413, _("The request body is larger than the limit."), "request_too_large"
        )
    else:
        response = _api_error(request, 400, _("The request was refused as malformed."), "bad_request")
    return response or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    response = _api_error(request, 403, _("You do not have permission to perform this action."), "forbidden")
    return response or defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: an API path that matches no operation answers JSON like every other API error."""
    response = _api_error(request, 404, _("Not found."), "not_found")
    return response or defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    response = _api_error(request, 500, _("Server error."), "server_error")
    return response or defaults.server_error(request)
