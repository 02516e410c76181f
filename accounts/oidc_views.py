"""The two single sign-on pages (accounts/oidc.py): start at the provider, come back with a code.
Both answer 404 while single sign-on is off."""

import logging

import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.generic import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts import oidc, two_factor

log = logging.getLogger(__name__)


def _refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """Back to the login page with the reason (a redirect, or the page itself with an error status)."""
    from accounts.views import LoginView

    messages.error(request, message)
    # someone already signed in keeps their session (the login page would only redirect them)
    if request.user.is_authenticated:
        return redirect("home")
    if status == 302:
        return redirect("accounts:login")
    response = LoginView.as_view()(request)
    response.status_code = status
    return response


def _provider_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.warning("single sign-on provider unavailable: %s", exc)
    message = _("%(provider)s cannot be reached just now. Try again later or sign in with your password.")
    return _refused(request, message % {"provider": oidc.provider_name()}, 502)


class OidcLoginView(OIDCAuthenticationRequestView):
    """Send the browser to the provider with a fresh state, nonce and PKCE challenge (kept in the session)."""

    def __init__(self, **kwargs) -> None:
        View.__init__(self, **kwargs)  # the endpoint is read from the discovery document per request

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oidc.oidc_enabled():
            raise Http404
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc.provider_metadata()["authorization_endpoint"]
        except oidc.ProviderUnavailable as exc:
            return _provider_unavailable(request, exc)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """The provider's answer: the code is exchanged and checked (the backend), then the person signed in."""

    @property
    def failure_url(self) -> str:
        return reverse("accounts:login")

    def get(self, request: HttpRequest) -> HttpResponse:
        if not oidc.oidc_enabled():
            raise Http404
        try:
            return super().get(request)
        except SuspiciousOperation as exc:  # a state not started here, a token that fails its checks
            log.warning("single sign-on callback refused: %s", exc)
            message = _(
                "The sign-in could not be completed: it does not match one started here. Please try again."
            )
            return _refused(request, message, 400)
        except (oidc.ProviderUnavailable, requests.RequestException) as exc:
            return _provider_unavailable(request, exc)

    def login_failure(self) -> HttpResponse:
        message = getattr(self.request, "oidc_refusal", None) or _(
            "%(provider)s did not sign you in. Try again or sign in with your password."
        ) % {"provider": oidc.provider_name()}
        return _refused(self.request, message, 302)

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        if getattr(self.request, "oidc_two_factor", False):
            self.request.session[two_factor.SESSION_SSO_TWO_FACTOR_KEY] = True
        return response
