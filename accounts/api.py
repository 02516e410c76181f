from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from accounts import roles
from accounts.models import Notification, User


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


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
    class Meta:
        model = Notification
        fields = ["id", "verb", "title", "body", "url", "created_at", "read_at"]


class LoginThrottle(AnonRateThrottle):
    scope = "anon"


class ObtainTokenView(APIView):
    """Exchange a username and password for an API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request._request, **data.validated_data)
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                {"non_field_errors": ["Unable to log in with the credentials given."]}
            )
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


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
        items = Notification.objects.filter(recipient=request.user).order_by("-created_at", "-id")[:100]
        unread = Notification.objects.filter(recipient=request.user, read_at__isnull=True).count()
        return Response(
            {"unread": unread, "results": NotificationSerializer(items, many=True).data},
            status=status.HTTP_200_OK,
        )
