"""REST API for tags: definitions and versions, previews, publish and rollback, builds and members
(paths and JSON names are a contract; see issue 4). Customers and imports are in crm_tags/api.py."""

import re
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Conflict
from config.concurrency import (
    VersionRequired,
    api_versions,
    etag_header,
    if_match,
    if_match_parameter,
    version_error_responses,
    with_etag,
)
from config.csv_export import stream_csv
from config.db_router import replica_reads_iter
from config.inputs import INT32_MAX, FormParser, InvalidInput, MultiPartParser
from crm_tags import permissions, selectors, services
from crm_tags.api import CrmImportFileSerializer
from crm_tags.models import Tag, TagBuild, TagMembership, TagVersion
from crm_tags.rules import RuleInvalid, parse_as_of
from privacy import consent, personal_data


class RuleRejected(exceptions.APIException):
    """400 `{"errors": [{path, message}]}` for a rule that does not validate."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_rule"

    def __init__(self, error: RuleInvalid) -> None:
        super().__init__()
        errors = [e.as_dict() for e in error.errors]
        first = errors[0] if errors else {"path": "", "message": ""}
        self.detail = {"detail": f"{first['path'] or '(root)'}: {first['message']}", "errors": errors}


class CanEditTags(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return permissions.can_edit_tags(request.user)


class CSVRenderer(BaseRenderer):
    """Lets `?format=csv` through DRF's content negotiation; the view streams the CSV itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None
    ) -> bytes:
        return b"" if data is None else str(data).encode()


def _as_of(value: Any) -> Any:
    if value in (None, ""):
        return None
    try:
        return parse_as_of(value)
    except InvalidInput as exc:
        raise exc.at("as_of").as_api_error() from exc


# --- tags ------------------------------------------------------------------------------------------


class TagSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=Tag.Kind.choices)
    category = serializers.CharField(required=False, allow_blank=True, write_only=True)
    category_name = serializers.CharField(
        source="category.name", read_only=True, default=None, allow_null=True
    )
    version = serializers.IntegerField(
        source="current_version.number", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Tag
        fields = [
            "slug",
            "name",
            "kind",
            "category",
            "category_name",
            "description",
            "schedule",
            "version",
            "rollout_percent",
            "members_count",
            "last_built_at",
        ]
        read_only_fields = ["rollout_percent", "members_count", "last_built_at"]
        extra_kwargs = {"slug": {"validators": []}}


class TagListAPI(generics.ListCreateAPIView):
    serializer_class = TagSerializer

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [IsAuthenticated(), CanEditTags()]
        return [IsAuthenticated()]

    def get_queryset(self) -> Any:
        return selectors.tags_visible_to(self.request.user)

    def perform_create(self, serializer: TagSerializer) -> None:
        data = serializer.validated_data
        try:
            serializer.instance = services.tag_create(
                slug=data["slug"],
                name=data["name"],
                kind=data["kind"],
                category=data.get("category", ""),
                description=data.get("description", ""),
                schedule=data.get("schedule", Tag.Schedule.HOURLY),
                by=self.request.user,
            )
        except services.TagError as exc:
            raise Conflict(str(exc)) from exc


class TagDetailAPI(APIView):
    @extend_schema(responses=TagSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(TagSerializer(selectors.tag_get_for_user(user=request.user, slug=slug)).data)


class TagVersionCreateSerializer(serializers.Serializer):
    definition = serializers.JSONField()
    base_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="The newest version you started from (0: none), when not sent as If-Match; a newer one "
        "saved meanwhile answers 409, neither this nor If-Match 428.",
    )


class TagVersionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="number")

    class Meta:
        model = TagVersion
        fields = ["version", "definition", "depends_on", "created_at"]


def draft_version(token: str) -> int:
    """The rule version number a client sent (If-Match, the `version` field); -1 (never current) for junk."""
    return int(token) if re.fullmatch(r"[0-9]{1,9}", token) else -1


def _versions_shown(tag: Tag, viewer: Any) -> list[TagVersion]:
    versions = list(tag.versions.order_by("-number"))
    for version in versions:
        version.definition = personal_data.definition_for(version.definition, viewer=viewer)
    return versions


class TagVersionsAPI(APIView):
    """A tag's rule versions, newest first. The tag's draft is versioned by the newest number: it is the
    ETag of the list, and saving a new version needs it back (If-Match, or `base_version` in the body)."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [IsAuthenticated(), CanEditTags()]
        return [IsAuthenticated()]

    def _current(self, request: Request, slug: str) -> tuple[str, dict | None]:
        versions = _versions_shown(selectors.tag_get_for_user(user=request.user, slug=slug), request.user)
        newest = versions[0] if versions else None
        return str(newest.number if newest else 0), TagVersionSerializer(newest).data if newest else None

    @extend_schema(responses=TagVersionSerializer(many=True), parameters=[etag_header(200)])
    def get(self, request: Request, slug: str) -> Response:
        tag = selectors.tag_get_for_user(user=request.user, slug=slug)
        versions = _versions_shown(tag, request.user)
        newest = str(versions[0].number if versions else 0)
        return with_etag(Response(TagVersionSerializer(versions, many=True).data), newest)

    @extend_schema(
        request=TagVersionCreateSerializer,
        parameters=[
            if_match_parameter(
                required=False,
                description='The ETag of GET …/versions/ (the newest version number, e.g. `"3"`; `"0"` '
                "for none), or send `base_version` instead. Neither: 428; older than the newest: 409.",
            ),
            etag_header(201, 409, 428),
        ],
        responses={
            201: inline_serializer("TagVersionCreated", {"version": serializers.IntegerField()}),
            **version_error_responses("TagDraft", TagVersionSerializer),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        tag = selectors.tag_get_for_user(user=request.user, slug=slug)
        with api_versions(lambda: self._current(request, slug)):
            form = TagVersionCreateSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            if request.headers.get("If-Match"):
                base = draft_version(if_match(request)[0])
            elif form.validated_data.get("base_version") is not None:
                base = form.validated_data["base_version"]
            else:
                raise VersionRequired(
                    _(
                        "Send If-Match with the ETag of GET …/versions/ (or base_version, 0 for a tag "
                        "without versions). Nothing was saved; the newest version is in `current`."
                    )
                )
            try:
                version = services.tag_version_create(
                    tag=tag, definition=form.validated_data["definition"], by=request.user, base_version=base
                )
            except RuleInvalid as exc:
                raise RuleRejected(exc) from exc
            except personal_data.PersonalRuleForbidden as exc:
                raise exceptions.PermissionDenied(str(exc)) from exc
            except services.TagError as exc:
                raise Conflict(str(exc)) from exc
        return with_etag(
            Response({"version": version.number}, status=status.HTTP_201_CREATED), str(version.number)
        )


class TagPreviewRequestSerializer(serializers.Serializer):
    definition = serializers.JSONField(required=False)
    version = serializers.IntegerField(required=False)
    as_of = serializers.CharField(required=False, allow_blank=True)
    rollout_percent = serializers.IntegerField(required=False, min_value=0, max_value=100, default=100)
    preview_id = serializers.CharField(required=False, allow_blank=True, max_length=64)


class TagPreviewSampleSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    values = serializers.DictField()


class TagPreviewSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    total = serializers.IntegerField()
    share = serializers.FloatField()
    sample = TagPreviewSampleSerializer(many=True)
    enter = serializers.IntegerField()
    exit = serializers.IntegerField()
    excluded_by_consent = serializers.IntegerField(
        help_text="rule matches left out: they withdrew consent to personalisation"
    )
    as_of = serializers.DateTimeField()


def preview_definition(tag: Tag, data: dict) -> dict:
    """The rule a preview request means: an inline definition (validated) or a saved version."""
    if "definition" in data and data["definition"] is not None:
        try:
            services.rule_check(tag=tag, definition=data["definition"])
        except RuleInvalid as exc:
            raise RuleRejected(exc) from exc
        return data["definition"]
    if "version" in data:
        version = tag.versions.filter(number=data["version"]).first()
        if version is None:
            raise exceptions.ValidationError({"version": [_("No such version.")]})
        return version.definition
    raise exceptions.ValidationError({"definition": [_("Give a definition or a version.")]})


class TagPreviewAPI(APIView):
    permission_classes = [IsAuthenticated, CanEditTags]

    @extend_schema(request=TagPreviewRequestSerializer, responses=TagPreviewSerializer)
    def post(self, request: Request, slug: str) -> Response:
        tag = selectors.tag_get_for_user(user=request.user, slug=slug)
        form = TagPreviewRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        definition = preview_definition(tag, form.validated_data)
        try:
            personal_data.check_rule_allowed(definition, viewer=request.user)
        except personal_data.PersonalRuleForbidden as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        try:
            preview = selectors.tag_preview(
                tag=tag,
                definition=definition,
                user=request.user,
                as_of=_as_of(form.validated_data.get("as_of")),
                rollout_percent=form.validated_data["rollout_percent"],
                preview_id=form.validated_data.get("preview_id", ""),
            )
        except selectors.PreviewCancelled as exc:
            raise Conflict(_("The preview was cancelled or ran out of time.")) from exc
        return Response(TagPreviewSerializer(preview).data)


class TagPreviewCancelSerializer(serializers.Serializer):
    preview_id = serializers.CharField(
        max_length=64, help_text="The `preview_id` the preview was started with."
    )


class TagPreviewCancelAPI(APIView):
    permission_classes = [IsAuthenticated, CanEditTags]

    @extend_schema(
        request=TagPreviewCancelSerializer,
        responses=inline_serializer("PreviewCancelled", {"cancelled": serializers.BooleanField()}),
    )
    def post(self, request: Request, slug: str) -> Response:
        selectors.tag_get_for_user(user=request.user, slug=slug)
        form = TagPreviewCancelSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        cancelled = selectors.preview_cancel(user=request.user, preview_id=form.validated_data["preview_id"])
        return Response({"cancelled": cancelled})


class TagPublishSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    rollout_percent = serializers.IntegerField(min_value=0, max_value=100)
    as_of = serializers.CharField(required=False, allow_blank=True)


BUILD_QUEUED = inline_serializer("TagBuildQueued", {"build_id": serializers.IntegerField()})


class TagPublishAPI(APIView):
    permission_classes = [IsAuthenticated, CanEditTags]

    @extend_schema(request=TagPublishSerializer, responses={202: BUILD_QUEUED})
    def post(self, request: Request, slug: str) -> Response:
        tag = selectors.tag_get_for_user(user=request.user, slug=slug)
        form = TagPublishSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            build = services.tag_publish(
                tag=tag,
                version_number=form.validated_data["version"],
                rollout_percent=form.validated_data["rollout_percent"],
                as_of=_as_of(form.validated_data.get("as_of")),
                by=request.user,
            )
        except RuleInvalid as exc:
            raise RuleRejected(exc) from exc
        except services.TagError as exc:
            raise exceptions.ValidationError({"version": [str(exc)]}) from exc
        return Response({"build_id": build.pk}, status=status.HTTP_202_ACCEPTED)


class TagRollbackSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, max_value=INT32_MAX, help_text="The version to publish again."
    )


class TagRollbackAPI(APIView):
    permission_classes = [IsAuthenticated, CanEditTags]

    @extend_schema(request=TagRollbackSerializer, responses={202: BUILD_QUEUED})
    def post(self, request: Request, slug: str) -> Response:
        tag = selectors.tag_get_for_user(user=request.user, slug=slug)
        form = TagRollbackSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        number = form.validated_data["version"]
        try:
            build = services.tag_rollback(tag=tag, version_number=number, by=request.user)
        except services.TagError as exc:
            raise exceptions.ValidationError({"version": [str(exc)]}) from exc
        return Response({"build_id": build.pk}, status=status.HTTP_202_ACCEPTED)


class TagBuildSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", default=None, read_only=True)

    class Meta:
        model = TagBuild
        fields = [
            "id",
            "status",
            "trigger",
            "version",
            "rollout_percent",
            "as_of",
            "members",
            "entered",
            "exited",
            "excluded_by_consent",
            "seconds",
            "error",
            "started_at",
            "finished_at",
            "created_at",
        ]


class TagBuildListAPI(generics.ListAPIView):
    serializer_class = TagBuildSerializer

    def get_queryset(self) -> Any:
        tag = selectors.tag_get_for_user(user=self.request.user, slug=self.kwargs["slug"])
        return selectors.tag_builds(tag=tag)


class TagBuildDetailAPI(APIView):
    @extend_schema(responses=TagBuildSerializer)
    def get(self, request: Request, slug: str, build_id: int) -> Response:
        tag = selectors.tag_get_for_user(user=request.user, slug=slug)
        return Response(TagBuildSerializer(selectors.tag_build_get(tag=tag, build_id=build_id)).data)


class TagMemberSerializer(serializers.ModelSerializer):
    """A member with personal values as the viewer may see them (`*_shown`, set by the selector)."""

    external_id = serializers.CharField(source="customer.external_id")
    name = serializers.CharField(source="customer.name_shown", allow_null=True)
    email = serializers.CharField(source="customer.email_shown", allow_null=True)
    phone = serializers.CharField(source="customer.phone_shown", allow_null=True)
    city = serializers.CharField(source="customer.city", allow_null=True)

    class Meta:
        model = TagMembership
        fields = ["external_id", "name", "email", "phone", "city", "since"]


MEMBER_CSV_HEADER = ["external_id", "name", "email", "phone", "city", "since"]


def members_csv_response(tag: Tag, user: Any, purpose: str = "") -> StreamingHttpResponse:
    """The members CSV; with a (checked) channel `purpose`, only the customers it may reach. The rows are
    read from the replica when it serves (config/db_router.py), while the body streams; with a purpose,
    from the primary."""
    # Whether this person sees contact data unmasked is read now, on the primary, and kept on the user
    # object for the stream: inside the replica's scope a permission revoked a moment ago (not replayed
    # yet) would still count, and the answer read there would stay cached (accounts.backends).
    personal_data.can_see(user)

    def rows() -> Any:
        return selectors.tag_members_rows(tag=tag, user=user, purpose=purpose)

    # Consent decides whom a channel may reach: a withdrawal must count at once, so a purpose's export
    # reads the primary, not a replica up to REPLICA_MAX_LAG_SECONDS behind.
    response = StreamingHttpResponse(
        stream_csv(MEMBER_CSV_HEADER, rows() if purpose else replica_reads_iter(rows)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{tag.slug}-members.csv"'
    return response


class TagMembersAPI(generics.ListAPIView):
    serializer_class = TagMemberSerializer
    renderer_classes = [JSONRenderer, CSVRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        # an error is JSON in the API's error shape even when the CSV was asked for
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv"], description="csv streams every member"),
            OpenApiParameter(
                "purpose",
                str,
                enum=list(consent.CHANNEL_PURPOSES),
                description="with format=csv: only the members this channel purpose may reach (consent)",
            ),
        ],
        responses={
            (200, "application/json"): TagMemberSerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        # every parameter is checked whatever the format: a bad one is refused, not ignored
        try:
            purpose = consent.channel_purpose(request.query_params.get("purpose"))
        except consent.ConsentInvalid as exc:
            raise exceptions.ValidationError({exc.key: [exc.message]}) from exc
        self.paginator.get_page_size(request)
        self.paginator.get_page_number(request, None)
        if request.query_params.get("format") == "csv":
            tag = selectors.tag_get_for_user(user=request.user, slug=kwargs["slug"])
            return members_csv_response(tag, request.user, purpose=purpose)
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        tag = selectors.tag_get_for_user(user=self.request.user, slug=self.kwargs["slug"])
        return selectors.tag_members(tag=tag)

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        selectors.customers_shown(
            [m.customer for m in page],
            user=self.request.user,
            kind="tag_members",
            what=f"tag {self.kwargs['slug']}",
        )
        return page


class TagMembersUploadAPI(APIView):
    permission_classes = [IsAuthenticated, CanEditTags]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=CrmImportFileSerializer, responses={201: TagBuildSerializer})
    def post(self, request: Request, slug: str) -> Response:
        tag = selectors.tag_get_for_user(user=request.user, slug=slug)
        form = CrmImportFileSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            build = services.tag_members_upload(tag=tag, upload=form.validated_data["file"], by=request.user)
        except services.TagError as exc:
            raise Conflict(str(exc)) from exc
        return Response(TagBuildSerializer(build).data, status=status.HTTP_201_CREATED)
