"""`GET /api/v1/oncall/?team=<team id>&at=<ISO time>`: who is on call for a team, and until when."""

from __future__ import annotations

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Team, User
from tickets import permissions
from tickets.oncall import on_call


class OnCallUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class OnCallSerializer(serializers.Serializer):
    team = serializers.IntegerField(help_text="The team's id.")
    user = OnCallUserSerializer(allow_null=True, help_text="The person on call; null when nobody is.")
    until = serializers.DateTimeField(
        allow_null=True,
        help_text="When this person's shift ends, overrides taken into account; null when no one else is ever on call.",
    )


class OnCallView(GenericAPIView):
    """Who is on call for a team at a time (now by default)."""

    serializer_class = OnCallSerializer
    pagination_class = None

    @extend_schema(
        operation_id="oncall_retrieve",
        parameters=[
            OpenApiParameter("team", int, required=True, description="The team's id."),
            OpenApiParameter(
                "at", str, required=False, description="An ISO 8601 time with its offset; default now."
            ),
        ],
        # 400 (naming `team` or `at`) and 403 (not support staff) come from config.openapi's shared errors
        responses={200: OnCallSerializer},
    )
    def get(self, request: Request) -> Response:
        if not permissions.can_view_oncall(request.user):
            raise exceptions.PermissionDenied(_("Only support staff read the on-call rota."))
        raw_team = request.query_params.get("team", "")
        if (
            not (raw_team.isascii() and raw_team.isdigit() and len(raw_team) <= 18)
            or not Team.objects.filter(pk=int(raw_team)).exists()
        ):
            raise exceptions.ValidationError({"team": [_("Give the id of an existing team.")]})
        raw_at = request.query_params.get("at", "")
        at = timezone.now()
        if raw_at:
            try:
                parsed = parse_datetime(raw_at.replace(" ", "+"))
            except ValueError:
                parsed = None
            if parsed is None or timezone.is_naive(parsed) or not 1970 <= parsed.year <= 9000:
                raise exceptions.ValidationError(
                    {"at": [_("Give an ISO 8601 time with its UTC offset, e.g. 2026-06-18T02:00:00+08:00.")]}
                )
            at = parsed
        answer = on_call(int(raw_team), at)
        person = (
            User.objects.filter(pk=answer.user_id).only("pk", "username").first() if answer.user_id else None
        )
        data = {
            "team": answer.team_id,
            "user": {"id": person.pk, "username": person.username} if person else None,
            "until": answer.until,
        }
        return Response(OnCallSerializer(data).data)
