"""REST API of audience activation: start a sync of a tag (or a campaign audience) to a destination, poll
it, list the sync log, retry a failed sync (docs/journeys.md, "Audience activation")."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Conflict
from journeys import permissions
from journeys.activation import selectors, services
from journeys.models import Destination, SyncMode, SyncRun
from privacy import consent

TAGS = ["journeys"]


class SyncRequestSerializer(serializers.Serializer):
    tag = serializers.SlugField(required=False, allow_blank=True, max_length=64)
    campaign = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    mode = serializers.ChoiceField(choices=SyncMode.choices, default=SyncMode.DELTA)
    purpose = serializers.ChoiceField(
        choices=[("", "")] + [(p, p) for p in consent.PURPOSES], required=False, allow_blank=True
    )


class SyncStartedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField()


class SyncRunSerializer(serializers.ModelSerializer):
    tag = serializers.SerializerMethodField()
    file = serializers.CharField(source="file_path")
    url = serializers.SerializerMethodField()

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "destination",
            "tag",
            "campaign",
            "mode",
            "purpose",
            "origin",
            "status",
            "attempts",
            "members",
            "entered",
            "exited",
            "sent",
            "skipped",
            "batches",
            "seconds",
            "error",
            "file",
            "created_at",
            "started_at",
            "finished_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_tag(self, run: SyncRun) -> str | None:
        return run.tag.slug if run.tag_id else None

    def get_url(self, run: SyncRun) -> str:
        return reverse("journeys-destination-sync", args=[run.destination_id, run.pk])


def _destination(request: Request, pk: int) -> Destination:
    return selectors.destination_get_for_user(user=request.user, destination_id=pk)


def _invalid(exc: services.ActivationInvalid) -> exceptions.ValidationError:
    return exceptions.ValidationError({exc.field: [exc.message]})


class DestinationSyncsApi(ListAPIView):
    serializer_class = SyncRunSerializer

    def get_queryset(self):  # noqa: ANN201 - DRF signature
        return selectors.sync_log(
            user=self.request.user, destination=_destination(self.request, self.kwargs["pk"])
        )

    @extend_schema(tags=TAGS, summary="A destination's sync log, newest first (support staff)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        summary="Start a sync of a tag (or a campaign audience) to the destination: delta or snapshot, only "
        "members holding the consent purpose; poll the url",
        request=SyncRequestSerializer,
        responses={202: SyncStartedSerializer, 400: None, 403: None, 404: None, 409: None},
    )
    def post(self, request: Request, pk: int) -> Response:
        destination = _destination(request, pk)
        if not permissions.can_sync_audience(request.user):
            raise PermissionDenied
        serializer = SyncRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            run = services.sync_start(
                destination=destination,
                by=request.user,
                tag=data.get("tag") or "",
                campaign=data.get("campaign"),
                mode=data["mode"],
                purpose=data.get("purpose") or "",
                origin=SyncRun.Origin.API,
            )
        except services.ActivationInvalid as exc:
            raise _invalid(exc) from exc
        except services.SyncBusy as exc:
            raise Conflict(str(exc)) from exc
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        url = reverse("journeys-destination-sync", args=[destination.pk, run.pk])
        return Response({"id": run.pk, "status": run.status, "url": url}, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=TAGS, summary="One sync of the log", responses={200: SyncRunSerializer, 404: None})
class DestinationSyncApi(APIView):
    def get(self, request: Request, pk: int, sync_id: int) -> Response:
        run = selectors.sync_get_for_user(
            user=request.user, destination=_destination(request, pk), sync_id=sync_id
        )
        return Response(SyncRunSerializer(run).data)


class DestinationSyncRetryApi(APIView):
    @extend_schema(
        tags=TAGS,
        summary="Retry a failed sync: only what got no 2xx is sent again (same bodies and keys)",
        request=None,
        responses={202: SyncStartedSerializer, 403: None, 404: None, 409: None},
    )
    def post(self, request: Request, pk: int, sync_id: int) -> Response:
        run = selectors.sync_get_for_user(
            user=request.user, destination=_destination(request, pk), sync_id=sync_id
        )
        try:
            run = services.sync_retry(run=run, by=request.user)
        except services.SyncBusy as exc:
            raise Conflict(str(exc)) from exc
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        url = reverse("journeys-destination-sync", args=[pk, run.pk])
        return Response({"id": run.pk, "status": run.status, "url": url}, status=status.HTTP_202_ACCEPTED)
