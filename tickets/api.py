"""The tickets REST API (DRF): the same services, selectors and permissions as the pages."""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from accounts.models import User
from accounts.selectors import support_agents
from campaigns.models import Campaign
from config.api import Conflict
from config.concurrency import etag_header, version_token, with_etag
from tickets import request_types, selectors, services
from tickets.models import Comment, RequestType, SatisfactionRating, Ticket, TicketEvent

# --- serializers ----------------------------------------------------------------------------------


class SlaSerializer(serializers.Serializer):
    first_response_due = serializers.DateTimeField(allow_null=True, read_only=True)
    resolution_due = serializers.DateTimeField(allow_null=True, read_only=True)
    state = serializers.ChoiceField(source="sla_state", choices=Ticket.SlaState.choices, read_only=True)
    due = serializers.DateTimeField(
        source="sla_due",
        allow_null=True,
        read_only=True,
        help_text="The next deadline; the queue sorts by it.",
    )


class CustomFieldValues(serializers.DictField):
    """A ticket's request-type values as the request's user may see them (tickets.request_types)."""

    def to_representation(self, value: Any) -> dict[str, Any]:
        viewer = getattr(self.context.get("request"), "user", None)
        return request_types.custom_values_for(value, viewer=viewer)


class TicketSerializer(serializers.ModelSerializer):
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    team = serializers.SlugRelatedField(slug_field="name", read_only=True)
    sla = SlaSerializer(source="*", read_only=True)
    feasibility = serializers.ChoiceField(
        choices=[("", "not assessed"), *Ticket.Feasibility.choices],
        read_only=True,
        help_text="Empty until the ticket is triaged.",
    )
    request_type = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    custom_fields = CustomFieldValues(
        read_only=True,
        help_text="The request type's field values: {name: value} (e-mail addresses and phone numbers in "
        "text masked unless the viewer, when known, holds view_pii).",
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "key",
            "title",
            "description",
            "type",
            "urgency",
            "status",
            "channel",
            "requester",
            "team",
            "assignee",
            "campaign",
            "requested_due",
            "feasibility",
            "is_complex",
            "created_at",
            "updated_at",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "sla",
            "request_type",
            "custom_fields",
        ]
        read_only_fields = fields


class TicketCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    type = serializers.ChoiceField(
        choices=Ticket.Type.choices, default="", help_text="Required unless the request type has a default."
    )
    urgency = serializers.ChoiceField(
        choices=Ticket.Urgency.choices,
        default="",
        help_text="Required unless the request type has a default.",
    )
    campaign = serializers.PrimaryKeyRelatedField(
        queryset=Campaign.objects.none(), required=False, allow_null=True, help_text="A campaign you may see"
    )
    requested_due = serializers.DateField(required=False, allow_null=True)
    request_type = serializers.PrimaryKeyRelatedField(
        queryset=RequestType.objects.none(),
        required=False,
        allow_null=True,
        help_text="One of your team's request types (GET /api/v1/teams/{id}/request-types/)",
    )
    custom_fields = serializers.DictField(
        required=False, help_text="The request type's field values {name: value}, checked against its fields."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from campaigns.selectors import campaigns_for_user

            self.fields["campaign"].queryset = campaigns_for_user(user=user)
            self.fields["request_type"].queryset = RequestType.objects.filter(
                team_id=user.team_id, active=True
            )


class TransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=Ticket.Status.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    feasibility = serializers.ChoiceField(
        choices=Ticket.Feasibility.choices, required=False, allow_blank=True, default=""
    )
    feasibility_note = serializers.CharField(required=False, allow_blank=True, default="")
    assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), required=False, allow_null=True
    )


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "author", "body", "internal", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField()
    internal = serializers.BooleanField(required=False, default=False)


class AssignSerializer(serializers.Serializer):
    assignee = serializers.SlugRelatedField(slug_field="username", queryset=support_agents(), allow_null=True)

    def to_internal_value(self, data: Any) -> Any:
        # a related field takes "" for null; the schema (and a reader) say a username or null
        if isinstance(data, dict) and data.get("assignee") == "":
            raise serializers.ValidationError(
                {"assignee": [_("Give an agent's username, or null to unassign.")]}
            )
        return super().to_internal_value(data)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()


class RatingSerializer(serializers.ModelSerializer):
    class Meta:
        model = SatisfactionRating
        fields = ["score", "comment", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"comment": {"required": False, "allow_blank": True}}


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = TicketEvent
        fields = ["id", "actor", "kind", "field", "old", "new", "note", "created_at"]
        read_only_fields = fields


class IntakeSerializer(serializers.Serializer):
    sender = serializers.CharField(max_length=254)
    text = serializers.CharField(max_length=20000)


# --- helpers --------------------------------------------------------------------------------------


def _raise_api(exc: Exception) -> None:
    """Translate service exceptions into the API's 409 / 403 / 400."""
    if isinstance(exc, services.TransitionNotAllowed | services.TicketConflict):
        raise Conflict(str(exc)) from exc
    if isinstance(exc, services.TransitionForbidden | DjangoPermissionDenied):
        raise exceptions.PermissionDenied(str(exc) or None) from exc
    if isinstance(exc, services.TransitionDataMissing):
        raise exceptions.ValidationError(exc.errors) from exc
    if isinstance(exc, DjangoValidationError):
        raise exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        ) from exc
    raise exc


SERVICE_ERRORS = (
    services.TransitionError,
    services.TicketConflict,
    DjangoPermissionDenied,
    DjangoValidationError,
)

FILTER_PARAMETERS = [
    OpenApiParameter("status", str, description="Status, or open / done / all; comma-separated or repeated"),
    OpenApiParameter("type", str, description="Type; comma-separated or repeated"),
    OpenApiParameter("urgency", str, description="Urgency; comma-separated or repeated"),
    OpenApiParameter("sla_state", str, description="SLA state; comma-separated or repeated"),
    OpenApiParameter("assignee", str, description="A username, `me` or `none`"),
    OpenApiParameter("team", {"type": "integer", "minimum": 1}, description="Team id"),
    OpenApiParameter("campaign", {"type": "integer", "minimum": 1}, description="Campaign id"),
    OpenApiParameter("q", str, description="A key (MT-1042) or words in the title"),
    OpenApiParameter(
        "request_type",
        {"type": "integer", "minimum": 1},
        description="Request type id; `cf_<field name>=<value>` filters on that field's value",
    ),
    OpenApiParameter(
        "created_from", OpenApiTypes.DATE, description="Created on or after this day (viewer's time zone)"
    ),
    OpenApiParameter("created_to", OpenApiTypes.DATE, description="Created on or before this day"),
    OpenApiParameter("resolved_from", OpenApiTypes.DATE, description="Resolved on or after this day"),
    OpenApiParameter("resolved_to", OpenApiTypes.DATE, description="Resolved on or before this day"),
]


class TicketObjectMixin:
    """Look the ticket up by key among those the person may see (404 otherwise)."""

    def get_ticket(self, request: Request, key: str) -> Ticket:
        return selectors.ticket_get_for_user(user=request.user, key=key)


# --- views ----------------------------------------------------------------------------------------


class TicketListCreateView(GenericAPIView):
    serializer_class = TicketSerializer

    def get_queryset(self) -> QuerySet[Ticket]:
        filters = selectors.TicketFilters.from_params(
            self.request.query_params, default_open=False, strict=True
        )
        return selectors.ticket_list_for_user(user=self.request.user, filters=filters)

    @extend_schema(
        parameters=FILTER_PARAMETERS, responses=TicketSerializer(many=True), operation_id="tickets_list"
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TicketSerializer(page, many=True).data)

    @extend_schema(
        request=TicketCreateSerializer, responses={201: TicketSerializer}, operation_id="tickets_create"
    )
    def post(self, request: Request) -> Response:
        data = TicketCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        try:
            ticket = services.ticket_create(
                requester=request.user, channel=Ticket.Channel.API, **data.validated_data
            )
        except SERVICE_ERRORS as exc:
            _raise_api(exc)
        return Response(TicketSerializer(ticket).data, status=status.HTTP_201_CREATED)


class TicketDetailView(TicketObjectMixin, GenericAPIView):
    serializer_class = TicketSerializer

    @extend_schema(responses=TicketSerializer, operation_id="tickets_retrieve", parameters=[etag_header(200)])
    def get(self, request: Request, key: str) -> Response:
        ticket = self.get_ticket(request, key)
        return with_etag(Response(TicketSerializer(ticket).data), version_token(ticket))


# POST one action on a ticket: the body, checked by `input_serializer` (None: no body), goes to
# `services.<action>(ticket=…, by=…, **fields)`; the answer is the ticket as it now is. (A comment, not
# a docstring: the schema shows a view's docstring as the operation's description.)
class TicketActionView(TicketObjectMixin, GenericAPIView):
    serializer_class = TicketSerializer
    input_serializer: type[serializers.Serializer] | None = None
    action: str

    def post(self, request: Request, key: str) -> Response:
        ticket = self.get_ticket(request, key)
        fields: dict = {}
        if self.input_serializer is not None:
            data = self.input_serializer(data=request.data)
            data.is_valid(raise_exception=True)
            fields = data.validated_data
        try:
            ticket = getattr(services, self.action)(ticket=ticket, by=request.user, **fields)
        except SERVICE_ERRORS as exc:
            _raise_api(exc)
        return Response(TicketSerializer(ticket).data)


@extend_schema_view(
    post=extend_schema(
        request=TransitionSerializer,
        responses={200: TicketSerializer},
        description="409 when the step does not exist from the current status, 403 when your role may not "
        "take it, 400 with field errors when data it needs is missing.",
    )
)
class TicketTransitionView(TicketActionView):
    serializer_class = TransitionSerializer
    input_serializer = TransitionSerializer
    action = "ticket_transition"


class TicketCommentsView(TicketObjectMixin, GenericAPIView):
    serializer_class = CommentSerializer

    @extend_schema(responses=CommentSerializer(many=True), operation_id="tickets_comments_list")
    def get(self, request: Request, key: str) -> Response:
        ticket = self.get_ticket(request, key)
        page = self.paginate_queryset(selectors.comments_for_user(user=request.user, ticket=ticket))
        return self.get_paginated_response(CommentSerializer(page, many=True).data)

    @extend_schema(
        request=CommentCreateSerializer,
        responses={201: CommentSerializer},
        operation_id="tickets_comments_create",
    )
    def post(self, request: Request, key: str) -> Response:
        ticket = self.get_ticket(request, key)
        data = CommentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            comment = services.comment_add(ticket=ticket, by=request.user, **data.validated_data)
        except SERVICE_ERRORS as exc:
            _raise_api(exc)
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


@extend_schema_view(post=extend_schema(request=AssignSerializer, responses=TicketSerializer))
class TicketAssignView(TicketActionView):
    serializer_class = AssignSerializer
    input_serializer = AssignSerializer
    action = "ticket_assign"


@extend_schema_view(post=extend_schema(request=None, responses=TicketSerializer))
class TicketAcceptView(TicketActionView):
    action = "ticket_accept"


@extend_schema_view(post=extend_schema(request=ReasonSerializer, responses=TicketSerializer))
class TicketRejectView(TicketActionView):
    serializer_class = ReasonSerializer
    input_serializer = ReasonSerializer
    action = "ticket_reject_delivery"


class TicketRatingView(TicketObjectMixin, GenericAPIView):
    serializer_class = RatingSerializer

    @extend_schema(request=RatingSerializer, responses={201: RatingSerializer})
    def post(self, request: Request, key: str) -> Response:
        ticket = self.get_ticket(request, key)
        data = RatingSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rating = services.rating_submit(
                ticket=ticket,
                by=request.user,
                score=data.validated_data["score"],
                comment=data.validated_data.get("comment", ""),
            )
        except SERVICE_ERRORS as exc:
            _raise_api(exc)
        return Response(RatingSerializer(rating).data, status=status.HTTP_201_CREATED)


class TicketEventsView(TicketObjectMixin, GenericAPIView):
    serializer_class = EventSerializer

    @extend_schema(responses=EventSerializer(many=True), operation_id="tickets_events_list")
    def get(self, request: Request, key: str) -> Response:
        ticket = self.get_ticket(request, key)
        page = self.paginate_queryset(selectors.events_for_user(user=request.user, ticket=ticket))
        return self.get_paginated_response(EventSerializer(page, many=True).data)


class ImIntakeView(GenericAPIView):
    """A chat message becomes a ticket (channel `im`); authenticated by the X-Intake-Token header."""

    serializer_class = IntakeSerializer
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @extend_schema(
        request=IntakeSerializer,
        responses={
            201: TicketSerializer,
            403: OpenApiResponse(description="The X-Intake-Token header is missing or wrong."),
            404: OpenApiResponse(description="Chat intake is off (IM_INTAKE_TOKEN is not set)."),
        },
        parameters=[
            OpenApiParameter(
                "X-Intake-Token",
                str,
                location=OpenApiParameter.HEADER,
                required=True,
                description="The shared secret IM_INTAKE_TOKEN; without it 403, whether the intake is on or not.",
            )
        ],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        given = request.headers.get("X-Intake-Token", "")
        if not given:
            raise exceptions.PermissionDenied(_("The X-Intake-Token header is required."))
        secret = settings.IM_INTAKE_TOKEN
        if not secret:
            raise exceptions.NotFound(_("Chat intake is off."))
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise exceptions.PermissionDenied(_("Bad intake token."))
        data = IntakeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ticket = services.intake_from_im(**data.validated_data)
        except SERVICE_ERRORS as exc:
            _raise_api(exc)
        return Response(TicketSerializer(ticket).data, status=status.HTTP_201_CREATED)
