"""Request-scoped plumbing shared by every app."""

import logging
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from config.logging import request_id_var

log = logging.getLogger(__name__)


class RequestIdMiddleware:
    """Give each request an id (or keep the proxy's `X-Request-ID`), log it and echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class DatabaseUnavailableMiddleware:
    """Answer 503 with a clear message (not a 500 trace) while the database cannot be reached.

    Django reconnects on the next request by itself (CONN_HEALTH_CHECKS), so no restart is needed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.db import InterfaceError, OperationalError, connections

        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        log.error("database unavailable for %s: %s", request.path, exception)
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        message = "The service is temporarily unavailable (database). Please retry in a moment."
        if request.path.startswith("/api/"):
            response = JsonResponse(
                {"detail": message, "errors": [{"message": message, "code": "database_unavailable"}]},
                status=503,
            )
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "5"
        return response
