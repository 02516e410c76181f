"""Responses that can carry personal values are never stored by browsers or proxies."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

from privacy.personal_data import needs_no_store


class NoStoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if needs_no_store(request.path_info):
            patch_cache_control(response, no_store=True, private=True)
        return response
