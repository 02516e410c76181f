"""REST API of the person's requests (paths and JSON names are a contract: see issue 15). Same services
and selectors as the pages; consent and the access log have their own modules."""

from typing import Any

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Conflict
from privacy import permissions, rights, selectors
from privacy.models import PrivacyRequest

TAGS = ["privacy"]


class RequestFileSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PrivacyRequest.Kind.choices)
    customer_external_id = serializers.CharField(max_length=64)


class RequestFiledSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()


class RequestListSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = PrivacyRequest
        fields = ["id", "kind", "status", "due_at", "overdue", "requested_by", "created_at", "finished_at"]
        read_only_fields = fields

    def get_overdue(self, req: PrivacyRequest) -> bool:
        return selectors.request_is_overdue(req)


class RequestDetailSerializer(serializers.ModelSerializer):
    customer_external_id = serializers.CharField(source="subject", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)
    approved_by = serializers.CharField(source="approved_by.username", default=None, read_only=True)
    overdue = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = PrivacyRequest
        fields = [
            "id",
            "kind",
            "status",
            "customer_external_id",
            "report",
            "error",
            "due_at",
            "overdue",
            "requested_by",
            "approved_by",
            "approved_at",
            "created_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_overdue(self, req: PrivacyRequest) -> bool:
        return selectors.request_is_overdue(req)

    def get_download_url(self, req: PrivacyRequest) -> str | None:
        """Only for a done export, and only for a viewer who may download it."""
        if not selectors.export_downloadable(req, user=self.context["request"].user):
            return None
        return reverse("privacy-request-download", args=[req.pk])


def _filed(req: PrivacyRequest) -> dict[str, Any]:
    return {"id": req.pk, "kind": req.kind, "status": req.status}


class RequestListCreateApi(ListAPIView):
    serializer_class = RequestListSerializer

    def get_queryset(self):  # noqa: ANN201 - DRF signature
        return selectors.requests_for_user(user=self.request.user)

    @extend_schema(tags=TAGS, summary="Personal data requests (managers)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        summary="File a person's export or erase request (managers; an erasure waits for approval)",
        request=RequestFileSerializer,
        responses={201: RequestFiledSerializer, 400: None, 403: None, 404: None},
    )
    def post(self, request: Request) -> Response:
        if not permissions.can_file_request(request.user):  # before the body: 403 whatever is sent
            raise PermissionDenied
        serializer = RequestFileSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        req = rights.request_file(by=request.user, **serializer.validated_data)
        return Response(_filed(req), status=status.HTTP_201_CREATED)


@extend_schema(
    tags=TAGS,
    summary="A personal data request",
    responses={200: RequestDetailSerializer, 403: None, 404: None},
)
class RequestDetailApi(APIView):
    def get(self, request: Request, pk: int) -> Response:
        req = selectors.request_get_for_user(user=request.user, request_id=pk)
        return Response(RequestDetailSerializer(req, context={"request": request}).data)


@extend_schema(
    tags=TAGS,
    summary="Approve a pending erasure (any manager)",
    request=None,
    responses={200: RequestFiledSerializer, 403: None, 404: None, 409: None},
)
class RequestApproveApi(APIView):
    def post(self, request: Request, pk: int) -> Response:
        req = selectors.request_get_for_user(user=request.user, request_id=pk)
        try:
            req = rights.request_approve(request=req, by=request.user)
        except rights.RequestStateError as exc:
            raise Conflict(str(exc)) from exc
        return Response(_filed(req))


@extend_schema(
    tags=TAGS,
    summary="Download a done export (managers who may see personal data; logged)",
    responses={
        (200, "application/json"): OpenApiResponse(
            OpenApiTypes.OBJECT, description="The person's data as one JSON document (an attachment)."
        ),
        403: None,
        404: None,
    },
)
class RequestDownloadApi(APIView):
    def get(self, request: Request, pk: int) -> FileResponse:
        return export_file_response(*selectors.export_open_for_user(user=request.user, request_id=pk))


def export_file_response(req: PrivacyRequest, handle: Any) -> FileResponse:
    """The export as an attachment that no cache keeps."""
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"personal-data-{req.pk}.json",
        content_type="application/json",
    )
    response["Cache-Control"] = "no-store"
    return response
