"""API authentication by personal token (`Authorization: Token <key>`, as DRF's own token scheme).

The key is looked up by its hash among active tokens; an unknown, expired or revoked key is a 401. A
`read` token is refused any unsafe method here, before the view runs, so every endpoint honours the
scope without declaring it (a view may opt out with `read_scope_may_write = True`: revoking itself).
"""

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from accounts.models import ApiToken, User
from accounts.tokens import api_token_for_key, api_token_touch


class ApiTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        token = result[1]
        view = (getattr(request, "parser_context", None) or {}).get("view")
        if (
            token.scope == ApiToken.Scope.READ
            and request.method not in SAFE_METHODS
            and not getattr(view, "read_scope_may_write", False)
        ):
            raise exceptions.PermissionDenied(_("This token may only read."))
        return result

    def authenticate_credentials(self, key: str) -> tuple[User, ApiToken]:
        token = api_token_for_key(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        api_token_touch(token)
        return token.user, token
