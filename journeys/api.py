"""REST API of journeys and destinations (paths and JSON names are a contract: issue 20). The same
services and selectors as the pages will use."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import Campaign
from config.api import Conflict
from journeys import dryrun, permissions, selectors, services
from journeys.definition import DefinitionInvalid
from journeys.models import Destination, DryRun, Enrolment, Journey
from privacy import consent

TAGS = ["journeys"]


class DefinitionRejected(exceptions.APIException):
    """400 `{"detail", "errors": [{path, message}]}` naming each problem's place in the definition."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, error: DefinitionInvalid) -> None:
        super().__init__()
        errors = [e.as_dict() for e in error.errors]
        first = errors[0] if errors else {"path": "", "message": ""}
        self.detail = {"detail": f"{first['path'] or '(root)'}: {first['message']}", "errors": errors}


class JourneyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    trigger = serializers.JSONField()
    entry = serializers.JSONField(required=False)
    steps = serializers.JSONField(required=False)
    goal = serializers.JSONField(required=False, allow_null=True)
    campaign = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class JourneyVersionCreateSerializer(serializers.Serializer):
    trigger = serializers.JSONField()
    entry = serializers.JSONField(required=False)
    steps = serializers.JSONField(required=False)
    goal = serializers.JSONField(required=False, allow_null=True)


class JourneyCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()


class JourneySerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    team = serializers.CharField(source="team.name", default=None, read_only=True)
    version = serializers.IntegerField(source="active_version.number", default=None, read_only=True)
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Journey
        fields = [
            "id",
            "name",
            "status",
            "percent",
            "campaign",
            "owner",
            "team",
            "version",
            "latest_version",
            "activated_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_latest_version(self, journey: Journey) -> int:
        """The newest version: the one the next activation puts to work (it may not be active yet)."""
        number = getattr(journey, "latest_number", None)
        if number is None:
            number = journey.versions.order_by("-number").values_list("number", flat=True).first()
        return number or 0


class ActivateSerializer(serializers.Serializer):
    percent = serializers.IntegerField(required=False, min_value=0, max_value=100)


class StepStatsSerializer(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    passed = serializers.IntegerField()
    acted = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()


class HoldoutStatsSerializer(serializers.Serializer):
    entered = serializers.IntegerField()
    converted = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    entered = serializers.IntegerField()
    active = serializers.IntegerField()
    converted = serializers.IntegerField()
    holdout = HoldoutStatsSerializer()
    lift = serializers.FloatField(allow_null=True)
    lift_ci = serializers.ListField(
        child=serializers.FloatField(), allow_null=True, min_length=2, max_length=2
    )
    steps = StepStatsSerializer(many=True)


class StepRunSerializer(serializers.Serializer):
    step = serializers.CharField()
    kind = serializers.CharField()
    outcome = serializers.CharField()
    detail = serializers.DictField()
    at = serializers.DateTimeField()


class EnrolmentSerializer(serializers.ModelSerializer):
    customer = serializers.SerializerMethodField()
    version = serializers.IntegerField(source="version.number", read_only=True)
    runs = StepRunSerializer(many=True, read_only=True)

    class Meta:
        model = Enrolment
        fields = [
            "id",
            "customer",
            "version",
            "holdout",
            "state",
            "step",
            "next_at",
            "entered_at",
            "converted_at",
            "finished_at",
            "exit_reason",
            "runs",
        ]
        read_only_fields = fields

    @extend_schema_field(inline_serializer("EnrolmentCustomer", {"external_id": serializers.CharField()}))
    def get_customer(self, enrolment: Enrolment) -> dict[str, str]:
        # the external id only: never a personal value, whoever asks
        return {"external_id": enrolment.customer.external_id}


class DestinationCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=Destination.Kind.choices)
    url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    secret = serializers.CharField(required=False, allow_blank=True, max_length=200, write_only=True)
    folder = serializers.CharField(required=False, allow_blank=True, max_length=300)
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    purpose = serializers.ChoiceField(
        choices=[("", "")] + [(p, p) for p in consent.CHANNEL_PURPOSES], required=False, allow_blank=True
    )
    customer_facing = serializers.BooleanField(required=False)
    # audience syncs: personal fields sent beside the external id (needs a purpose and view_pii)
    personal_fields = serializers.ListField(
        child=serializers.ChoiceField(choices=["email", "phone"]), required=False, max_length=2
    )


class DestinationSerializer(serializers.ModelSerializer):
    secret_set = serializers.SerializerMethodField()

    class Meta:
        model = Destination
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "folder",
            "batch_size",
            "purpose",
            "customer_facing",
            "personal_fields",
            "secret_set",
        ]
        read_only_fields = fields

    def get_secret_set(self, destination: Destination) -> bool:
        return bool(destination.secret)


def _journey_for(request: Request, pk: int) -> Journey:
    return selectors.journey_get_for_user(user=request.user, journey_id=pk)


class JourneyListCreateApi(ListAPIView):
    serializer_class = JourneySerializer

    def get_queryset(self):  # noqa: ANN201 - DRF signature
        return selectors.journeys_for_user(user=self.request.user)

    @extend_schema(tags=TAGS, summary="Journeys the viewer may see")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        summary="Create a draft journey (its first version)",
        request=JourneyCreateSerializer,
        responses={201: JourneyCreatedSerializer, 400: None, 403: None},
    )
    def post(self, request: Request) -> Response:
        if not permissions.can_create_journey(request.user):
            raise PermissionDenied
        serializer = JourneyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        campaign = None
        if data.get("campaign"):
            campaign = Campaign.objects.filter(pk=data["campaign"]).first()
            if campaign is None:
                raise exceptions.ValidationError({"campaign": ["No such campaign."]})
        try:
            journey = services.journey_create(
                by=request.user,
                name=data["name"],
                trigger=data["trigger"],
                entry=data.get("entry"),
                steps=data.get("steps"),
                goal=data.get("goal"),
                campaign=campaign,
            )
        except DefinitionInvalid as exc:
            raise DefinitionRejected(exc) from exc
        return Response({"id": journey.pk, "version": 1}, status=status.HTTP_201_CREATED)


@extend_schema(tags=TAGS, summary="A journey", responses={200: JourneySerializer, 404: None})
class JourneyDetailApi(APIView):
    def get(self, request: Request, pk: int) -> Response:
        return Response(JourneySerializer(_journey_for(request, pk)).data)


class JourneyVersionCreateApi(APIView):
    @extend_schema(
        tags=TAGS,
        summary="A new version of a journey; it applies to new enrolments once the journey is activated again",
        request=JourneyVersionCreateSerializer,
        responses={201: JourneyCreatedSerializer, 400: None, 403: None, 404: None},
    )
    def post(self, request: Request, pk: int) -> Response:
        journey = _journey_for(request, pk)
        serializer = JourneyVersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            version = services.journey_version_create(
                journey=journey,
                by=request.user,
                trigger=data["trigger"],
                entry=data.get("entry"),
                steps=data.get("steps"),
                goal=data.get("goal"),
            )
        except DefinitionInvalid as exc:
            raise DefinitionRejected(exc) from exc
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response({"id": journey.pk, "version": version.number}, status=status.HTTP_201_CREATED)


class JourneyActivateApi(APIView):
    @extend_schema(
        tags=TAGS,
        summary="Activate (or raise the gray share of) a journey; above 10 % a manager must do it",
        request=ActivateSerializer,
        responses={200: JourneySerializer, 400: None, 403: None, 404: None, 409: None},
    )
    def post(self, request: Request, pk: int) -> Response:
        journey = _journey_for(request, pk)
        serializer = ActivateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            journey = services.journey_activate(
                journey=journey, by=request.user, percent=serializer.validated_data.get("percent")
            )
        except services.JourneyStateError as exc:
            raise Conflict(str(exc)) from exc
        except DefinitionInvalid as exc:
            raise DefinitionRejected(exc) from exc
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(JourneySerializer(journey).data)


class JourneyPauseApi(APIView):
    @extend_schema(
        tags=TAGS,
        summary="Pause a journey (no admissions, no steps) until it is activated again",
        request=None,
        responses={200: JourneySerializer, 403: None, 404: None, 409: None},
    )
    def post(self, request: Request, pk: int) -> Response:
        journey = _journey_for(request, pk)
        try:
            journey = services.journey_pause(journey=journey, by=request.user)
        except services.JourneyStateError as exc:
            raise Conflict(str(exc)) from exc
        return Response(JourneySerializer(journey).data)


@extend_schema(
    tags=TAGS,
    summary="A journey's counts, per-step outcomes and lift against the holdout",
    responses={200: StatsSerializer, 404: None},
)
class JourneyStatsApi(APIView):
    def get(self, request: Request, pk: int) -> Response:
        return Response(selectors.journey_stats(journey=_journey_for(request, pk)))


class JourneyEnrolmentsApi(ListAPIView):
    serializer_class = EnrolmentSerializer

    def get_queryset(self):  # noqa: ANN201 - DRF signature
        journey = _journey_for(self.request, self.kwargs["pk"])
        customer = self.request.query_params.get("customer")
        return selectors.journey_enrolments(journey=journey, customer_external_id=customer or None)

    @extend_schema(
        tags=TAGS,
        summary="A journey's enrolments (one customer's with ?customer=EXTERNAL_ID), each with its step runs",
        parameters=[OpenApiParameter("customer", OpenApiTypes.STR, description="a customer's external id")],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class DestinationListCreateApi(ListAPIView):
    serializer_class = DestinationSerializer

    def get_queryset(self):  # noqa: ANN201 - DRF signature
        if not permissions.can_manage_destinations(self.request.user):
            raise PermissionDenied
        return Destination.objects.order_by("name")

    @extend_schema(tags=TAGS, summary="Destinations (support staff; secrets never shown)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        summary="Create a webhook or file destination (support staff)",
        request=DestinationCreateSerializer,
        responses={
            201: inline_serializer("DestinationCreated", {"id": serializers.IntegerField()}),
            400: None,
            403: None,
        },
    )
    def post(self, request: Request) -> Response:
        if not permissions.can_manage_destinations(request.user):
            raise PermissionDenied
        serializer = DestinationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            destination = services.destination_create(by=request.user, **serializer.validated_data)
        except DefinitionInvalid as exc:
            raise DefinitionRejected(exc) from exc
        return Response({"id": destination.pk}, status=status.HTTP_201_CREATED)


class DryRunRequestSerializer(serializers.Serializer):
    # "from" is a Python keyword: the field is declared under its JSON name below
    to = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        return fields


class DryRunStartedSerializer(serializers.Serializer):
    job_id = serializers.IntegerField()
    url = serializers.CharField()


class DryRunSerializer(serializers.Serializer):
    status = serializers.CharField()
    result = StatsSerializer(allow_null=True)


class JourneyDryRunApi(APIView):
    @extend_schema(
        tags=TAGS,
        summary="Start a dry run (back-test): what the journey's newest version would have done between two "
        "past moments; poll the url",
        request=DryRunRequestSerializer,
        responses={202: DryRunStartedSerializer, 400: None, 404: None},
    )
    def post(self, request: Request, pk: int) -> Response:
        journey = _journey_for(request, pk)
        if not permissions.can_dry_run_journey(request.user, journey):
            raise PermissionDenied
        serializer = DryRunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            job = dryrun.dry_run_start(journey=journey, by=request.user, low=data["from"], high=data["to"])
        except dryrun.DryRunInvalid as exc:
            raise exceptions.ValidationError({exc.field: [exc.message]}) from exc
        url = reverse("journeys-dry-run-detail", args=[journey.pk, job.pk])
        return Response({"job_id": job.pk, "url": url}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    tags=TAGS, summary="A dry run's status and result", responses={200: DryRunSerializer, 404: None}
)
class JourneyDryRunDetailApi(APIView):
    def get(self, request: Request, pk: int, job_id: int) -> Response:
        journey = _journey_for(request, pk)
        if not permissions.can_dry_run_journey(request.user, journey):
            raise PermissionDenied
        job = get_object_or_404(DryRun, pk=job_id, journey=journey)
        return Response({"status": job.status, "result": job.result})
