"""The request-types API: a team's request types (GET for the team and support staff, POST for managers)
and a ticket's custom field values (GET, PATCH)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Team, User
from accounts.selectors import support_agents
from tickets import permissions, request_types
from tickets.api import SERVICE_ERRORS, TicketObjectMixin, TicketSerializer, _raise_api
from tickets.routing_tables import RequestField, RequestType, Skill


class RequestFieldSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=RequestField.Kind.choices, default=RequestField.Kind.TEXT)
    choices = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=list,
        help_text="For kind `choice`.",
    )

    class Meta:
        model = RequestField
        fields = ["name", "label", "kind", "required", "choices"]
        extra_kwargs = {"label": {"required": False, "allow_blank": True}, "required": {"default": False}}

    def get_unique_together_validators(self) -> list:
        return []  # the service checks names within the request type


class RequestTypeSerializer(serializers.ModelSerializer):
    team = serializers.PrimaryKeyRelatedField(read_only=True)
    default_assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.none(), required=False, allow_null=True
    )
    skills = serializers.SlugRelatedField(
        slug_field="name", many=True, queryset=Skill.objects.all(), required=False, help_text="Skill names"
    )
    fields = RequestFieldSerializer(many=True, required=False)

    class Meta:
        model = RequestType
        fields = [
            "id",
            "team",
            "name",
            "description",
            "default_type",
            "default_urgency",
            "default_assignee",
            "skills",
            "active",
            "fields",
        ]
        read_only_fields = ["id", "team"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "default_assignee" in self.fields:
            self.fields["default_assignee"].queryset = support_agents()

    def get_validators(self) -> list:
        return []  # a duplicate name is the service's 400, naming the field


def _team_for(request: Request, team_id: int) -> Team:
    """The team, when the person may see its request types: its members and support staff (404 otherwise)."""
    team = Team.objects.filter(pk=team_id).first()
    user = request.user
    if team is None or not (permissions.can_work(user) or user.team_id == team.pk):
        raise Http404("No such team.")
    return team


class TeamRequestTypesView(GenericAPIView):
    serializer_class = RequestTypeSerializer

    @extend_schema(responses=RequestTypeSerializer(many=True), operation_id="teams_request_types_list")
    def get(self, request: Request, id: int) -> Response:
        team = _team_for(request, id)
        qs = (
            RequestType.objects.filter(team=team)
            .select_related("default_assignee")
            .prefetch_related("fields", "skills")
            .order_by("name", "id")
        )
        if not permissions.can_manage_routing(request.user):
            qs = qs.filter(active=True)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(RequestTypeSerializer(page, many=True).data)

    @extend_schema(
        request=RequestTypeSerializer,
        responses={
            201: RequestTypeSerializer,
            400: OpenApiResponse(description="A bad value; the message names the field."),
            403: OpenApiResponse(description="Only managers define request types."),
        },
        operation_id="teams_request_types_create",
    )
    def post(self, request: Request, id: int) -> Response:
        team = _team_for(request, id)
        if not permissions.can_manage_routing(request.user):
            raise exceptions.PermissionDenied()
        data = RequestTypeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            request_type = request_types.request_type_save(
                team=team,
                by=request.user,
                name=values["name"],
                description=values.get("description", ""),
                default_type=values.get("default_type", ""),
                default_urgency=values.get("default_urgency", ""),
                default_assignee=values.get("default_assignee"),
                skills=values.get("skills", []),
                active=values.get("active", True),
                fields=values.get("fields", []),
            )
        except SERVICE_ERRORS as exc:
            _raise_api(exc)
        return Response(RequestTypeSerializer(request_type).data, status=status.HTTP_201_CREATED)


class CustomFieldsSerializer(serializers.Serializer):
    custom_fields = serializers.DictField(help_text="{name: value}; null clears a field; others stay.")


class TicketCustomFieldsView(TicketObjectMixin, GenericAPIView):
    serializer_class = CustomFieldsSerializer

    @extend_schema(responses=CustomFieldsSerializer, operation_id="tickets_custom_fields_retrieve")
    def get(self, request: Request, key: str) -> Response:
        ticket = self.get_ticket(request, key)
        return Response(
            {"custom_fields": request_types.custom_values_for(ticket.custom_fields, viewer=request.user)}
        )

    @extend_schema(
        request=CustomFieldsSerializer,
        responses={
            200: TicketSerializer,
            400: OpenApiResponse(description="An unknown or bad field; the message names it."),
        },
        operation_id="tickets_custom_fields_update",
    )
    def patch(self, request: Request, key: str) -> Response:
        ticket = self.get_ticket(request, key)
        data = CustomFieldsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ticket = request_types.ticket_custom_fields_update(
                ticket=ticket, by=request.user, values=data.validated_data["custom_fields"]
            )
        except request_types.CustomFieldsInvalid as exc:
            raise exceptions.ValidationError({"custom_fields": exc.by_field}) from exc
        except SERVICE_ERRORS as exc:
            _raise_api(exc)
        return Response(
            TicketSerializer(ticket, context={"request": request}).data, status=status.HTTP_200_OK
        )
