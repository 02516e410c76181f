from django.contrib.auth import authenticate
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from accounts import roles, two_factor
from accounts.authentication import ApiTokenAuthentication
from accounts.login_throttle import sign_in_refused_for
from accounts.models import ApiToken, Notification, User
from accounts.selectors import api_token_get_for_user, api_tokens_active, notifications_shown_to
from accounts.tokens import Reason, api_token_issue, api_token_revoke, api_tokens_revoke_all
from config.api import StandardPagination


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text=gettext_lazy("What the token is for.")
    )
    scope = serializers.ChoiceField(
        choices=ApiToken.Scope.choices,
        default=ApiToken.Scope.WRITE,
        help_text=gettext_lazy("`read` tokens may only use GET, HEAD and OPTIONS."),
    )
    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=12,
        help_text=gettext_lazy(
            "The current six-digit code from the authenticator app: required for people who use two-factor "
            "sign-in (recovery codes are accepted on the web sign-in only)."
        ),
    )


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its key (only the key's first characters)."""

    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "user", "name", "scope", "prefix", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class TokenSerializer(serializers.Serializer):
    """The new token: the key is shown in this response only."""

    id = serializers.IntegerField()
    token = serializers.CharField()
    name = serializers.CharField()
    scope = serializers.ChoiceField(choices=ApiToken.Scope.choices)
    expires_at = serializers.DateTimeField()


class RevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField()


class MeSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "display_name",
            "email",
            "role",
            "team",
            "language",
            "timezone",
            "permissions",
        ]

    def get_role(self, user: User) -> str | None:
        return roles.role_of(user)

    def get_team(self, user: User) -> str | None:
        return user.team.name if user.team_id else None

    def get_permissions(self, user: User) -> list[str]:
        held = {
            "view_pii": roles.can_view_pii(user),
            "work_queue": roles.is_agent(user),
            "manage_support": roles.is_manager(user),
            "view_dashboards": roles.can_view_dashboards(user),
        }
        return sorted(name for name, has in held.items() if has)


class NotificationSerializer(serializers.ModelSerializer):
    """Title and body as the selector rendered them for the reader (their language, values masked)."""

    title = serializers.CharField(source="shown_title", read_only=True)
    body = serializers.CharField(source="shown_body", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "verb", "title", "body", "url", "created_at", "read_at"]
        read_only_fields = fields


class LoginThrottle(AnonRateThrottle):
    scope = "anon"


class ObtainTokenView(APIView):
    """Exchange a username and password for a new API token (POST); revoke the token in use (DELETE)."""

    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]
    read_scope_may_write = True  # a read-only token may still sign itself out

    def get_authenticators(self) -> list:
        # Signing in takes no credentials but the body's (a stale token header must not stand in the way);
        # signing out takes the token being revoked. (The schema generator asks without a request.)
        signing_in = self.request is not None and self.request.method == "POST"
        return [] if signing_in else [ApiTokenAuthentication()]

    @extend_schema(
        description=(
            "Exchange a username and password for a new API token. The key is shown in this answer only; "
            "the token expires at `expires_at`, and is revoked when the password changes. People who use "
            "two-factor sign-in also send `otp`, the current code from their authenticator app; people whose "
            "role must use it and who have not set it up yet are refused (403) until they do, on the web."
        ),
        request=TokenRequestSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(
                description="Wrong credentials, a missing field, or a missing or wrong `otp` code."
            ),
            403: OpenApiResponse(description="Two-factor sign-in is required of this person but not set up."),
            429: OpenApiResponse(
                description="Too many failed sign-ins, or wrong codes; see the Retry-After header."
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        user = authenticate(request._request, username=fields["username"], password=fields["password"])
        retry_after = sign_in_refused_for(request._request)
        if retry_after is not None:
            raise exceptions.Throttled(
                wait=retry_after, detail=_("Too many failed sign-ins; try again later.")
            )
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                {"non_field_errors": ["Unable to log in with the credentials given."]}
            )
        _second_factor_check(user, fields.get("otp", ""))
        token = api_token_issue(user=user, name=fields.get("name", ""), scope=fields["scope"])
        return Response(
            {
                "id": token.pk,
                "token": token.key,
                "name": token.name,
                "scope": token.scope,
                "expires_at": serializers.DateTimeField().to_representation(token.expires_at),
            }
        )

    @extend_schema(
        description="Sign out: revoke the token this request carries.",
        request=None,
        responses={204: None, 401: OpenApiResponse(description="No valid token was given.")},
        auth=[{"tokenAuth": []}],
    )
    def delete(self, request: Request) -> Response:
        if not isinstance(request.auth, ApiToken):
            raise exceptions.NotAuthenticated()
        api_token_revoke(token=request.auth, by=request.user, reason=Reason.LOGOUT)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _second_factor_check(user: User, code: str) -> None:
    """Signing in for a token asks what the web sign-in asks: the authenticator's code when one is set up;
    a person whose role must use two-factor sign-in and has none is sent to set it up first."""
    if two_factor.two_factor_enabled(user):
        if not code.strip():
            missing = _("This account uses two-factor sign-in: send the current code from the app as `otp`.")
            raise serializers.ValidationError({"otp": [missing]})
        try:
            two_factor.two_factor_check(user=user, code=code, allow_recovery=False)
        except two_factor.TwoFactorError as exc:
            if exc.retry_after:
                raise exceptions.Throttled(wait=exc.retry_after, detail=str(exc)) from exc
            raise serializers.ValidationError({"otp": [str(exc)]}) from exc
    elif two_factor.two_factor_required_for(user):
        raise exceptions.PermissionDenied(
            _("Your role must use two-factor sign-in: set it up on the web before asking for a token.")
        )


def _token_owner(request: Request) -> User:
    """The person whose tokens a request means: `?user=<username>` (managers and admins), else oneself."""
    username = request.query_params.get("user")
    if not username or username == request.user.username:
        return request.user
    if not roles.can_manage_api_tokens(request.user):
        raise exceptions.PermissionDenied(_("You may only see and revoke your own tokens."))
    owner = User.objects.filter(username=username).first()
    if owner is None:
        raise exceptions.NotFound(_("No such user."))
    return owner


OWNER_PARAMETER = OpenApiParameter(
    "user",
    OpenApiTypes.STR,
    description="Another person's username (managers and admins only); default: yourself.",
)


class ApiTokenListView(generics.ListAPIView):
    """A person's active API tokens (GET); revoke them all (DELETE)."""

    serializer_class = ApiTokenSerializer
    pagination_class = StandardPagination

    def get_queryset(self) -> QuerySet[ApiToken]:
        return api_tokens_active(owner=_token_owner(self.request)).select_related("user")

    @extend_schema(
        description="Your active API tokens (never their keys); a manager or admin may name another person.",
        parameters=[OWNER_PARAMETER],
        responses={
            200: ApiTokenSerializer(many=True),
            403: OpenApiResponse(description="Another person's tokens, asked by someone who is not staff."),
            404: OpenApiResponse(description="No such user."),
        },
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="auth_tokens_revoke_all",
        description="Revoke all your API tokens (this one too); a manager or admin may name another person.",
        parameters=[OWNER_PARAMETER],
        request=None,
        responses={
            200: RevokedSerializer,
            403: OpenApiResponse(description="Another person's tokens, asked by someone who is not staff."),
            404: OpenApiResponse(description="No such user."),
        },
    )
    def delete(self, request: Request) -> Response:
        revoked = api_tokens_revoke_all(user=_token_owner(request), by=request.user)
        return Response({"revoked": revoked})


class ApiTokenDetailView(APIView):
    """Revoke one token: one's own, or (managers and admins) anyone's."""

    @extend_schema(
        operation_id="auth_tokens_revoke",
        request=None,
        responses={204: None, 404: OpenApiResponse(description="No such active token within your reach.")},
    )
    def delete(self, request: Request, token_id: int) -> Response:
        token = api_token_get_for_user(user=request.user, token_id=token_id)
        api_token_revoke(token=token, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The person behind the request."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)


class NotificationListView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "NotificationList",
            {"unread": serializers.IntegerField(), "results": NotificationSerializer(many=True)},
        )
    )
    def get(self, request: Request) -> Response:
        items = notifications_shown_to(user=request.user)
        unread = Notification.objects.filter(recipient=request.user, read_at__isnull=True).count()
        return Response(
            {"unread": unread, "results": NotificationSerializer(items, many=True).data},
            status=status.HTTP_200_OK,
        )
