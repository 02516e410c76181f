"""Knowledge-base REST API: the same services, selectors and permissions as the pages."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import Conflict, StandardPagination
from config.concurrency import (
    IF_MATCH_PARAMETER,
    api_versions,
    etag_header,
    if_match,
    version_error_responses,
    version_token,
    with_etag,
)
from config.markdown import render_markdown
from knowledge_base import permissions, services
from knowledge_base.models import Article, ArticleVersion, Category
from knowledge_base.search import ArticleSearch
from knowledge_base.selectors import (
    ArticleFilters,
    article_get_for_user,
    article_search_for_user,
    article_versions_for_user,
)


class ArticleWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    summary = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    body = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    # Plain strings checked against the choices (keeps the schema free of clashing enum names).
    kind = serializers.CharField(help_text="One of: " + ", ".join(Article.Kind.values))
    language = serializers.CharField(help_text="One of: " + ", ".join(Article.Language.values))
    category = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.all(), required=False, allow_null=True
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)

    def validate_kind(self, value: str) -> str:
        if value not in Article.Kind.values:
            raise ValidationError(f"Choose one of: {', '.join(Article.Kind.values)}.", code="invalid_choice")
        return value

    def validate_language(self, value: str) -> str:
        if value not in Article.Language.values:
            raise ValidationError(
                f"Choose one of: {', '.join(Article.Language.values)}.", code="invalid_choice"
            )
        return value


class ArticleStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="draft, in_review, published or archived")


class ArticleSearchResultSerializer(serializers.Serializer):
    """One ranked hit: the snippet is HTML (escaped text, matches wrapped in <mark>)."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    snippet = serializers.SerializerMethodField()
    score = serializers.SerializerMethodField()
    kind = serializers.CharField()
    language = serializers.CharField()
    status = serializers.CharField()

    def get_snippet(self, article: Article) -> str:
        search: ArticleSearch = self.context["search"]
        return str(search.snippet(article)) if search.query else article.summary

    def get_score(self, article: Article) -> float:
        return round(float(getattr(article, "score", 0.0) or 0.0), 6)

    def to_representation(self, article: Article) -> dict[str, Any]:
        # The fields above (they document the schema), without DRF's per-field machinery: this runs
        # for every hit of every search.
        return {
            "id": article.pk,
            "title": article.title,
            "snippet": self.get_snippet(article),
            "score": self.get_score(article),
            "kind": article.kind,
            "language": article.language,
            "status": article.status,
        }


class ArticleDetailSerializer(serializers.ModelSerializer):
    def get_version_token(self, article: Article) -> str:
        return version_token(article)

    owner = serializers.CharField(source="owner.username", read_only=True)
    reviewer = serializers.CharField(
        source="reviewer.username", read_only=True, default=None, allow_null=True
    )
    version = serializers.IntegerField(source="version_number", read_only=True)
    kind = serializers.CharField(read_only=True)
    language = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    body_html = serializers.SerializerMethodField()
    version_token = serializers.SerializerMethodField(
        help_text="The article's version, also its ETag: send it back as If-Match with PATCH."
    )

    class Meta:
        model = Article
        fields = [
            "id",
            "version_token",
            "title",
            "summary",
            "body",
            "body_html",
            "kind",
            "language",
            "category",
            "tags",
            "status",
            "owner",
            "reviewer",
            "version",
            "view_count",
            "created_at",
            "updated_at",
            "published_at",
            "reviewed_at",
        ]
        read_only_fields = fields

    def get_body_html(self, article: Article) -> str:
        return render_markdown(article.body)


class ArticleVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, default=None, allow_null=True
    )
    kind = serializers.CharField(read_only=True)
    language = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)

    class Meta:
        model = ArticleVersion
        fields = [
            "number",
            "title",
            "summary",
            "body",
            "kind",
            "language",
            "category",
            "status",
            "note",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


def _django_errors(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(
        exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    )


class SearchPagination(StandardPagination):
    """Search pages hold 20 hits (each with a snippet); `?page_size=` still goes up to 500."""

    page_size = 20
    search: ArticleSearch | None = None

    def django_paginator_class(self, object_list: Any, per_page: int) -> Paginator:
        if self.search is not None and object_list is self.search.queryset:
            return self.search.paginator(per_page)
        return Paginator(object_list, per_page)


class ArticleListCreateView(generics.GenericAPIView):
    """Search articles (ranked; published only for requesters) or write a new draft (support staff)."""

    serializer_class = ArticleSearchResultSerializer
    pagination_class = SearchPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description="Search text (Chinese and/or English)"),
            OpenApiParameter("category", {"type": "integer", "minimum": 1}),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=Article.Kind.values),
            OpenApiParameter("language", OpenApiTypes.STR, enum=Article.Language.values),
            OpenApiParameter("status", OpenApiTypes.STR, enum=Article.Status.values),
        ],
        responses={200: ArticleSearchResultSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        search = article_search_for_user(
            user=request.user, filters=ArticleFilters.from_params(request.query_params, strict=True)
        )
        self.paginator.search = search
        page = self.paginate_queryset(search.queryset)
        data = ArticleSearchResultSerializer(page, many=True, context={"search": search}).data
        return self.get_paginated_response(data)

    @extend_schema(request=ArticleWriteSerializer, responses={201: ArticleStatusSerializer})
    def post(self, request: Request) -> Response:
        if not permissions.can_write_articles(request.user):
            raise PermissionDenied("Only support staff may write articles.")
        data = ArticleWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            article = services.article_create(author=request.user, **data.validated_data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response({"id": article.pk, "status": article.status}, status=status.HTTP_201_CREATED)


class ArticleDetailView(generics.GenericAPIView):
    """One article; PATCH changes a draft (every change keeps a version)."""

    serializer_class = ArticleDetailSerializer

    def _article(self, request: Request, pk: int) -> Article:
        return article_get_for_user(user=request.user, article_id=pk)

    def _current(self, request: Request, pk: int) -> tuple[str, dict]:
        article = self._article(request, pk)
        return version_token(article), ArticleDetailSerializer(article).data

    @extend_schema(responses={200: ArticleDetailSerializer}, parameters=[etag_header(200)])
    def get(self, request: Request, pk: int) -> Response:
        article = self._article(request, pk)
        return with_etag(Response(ArticleDetailSerializer(article).data), version_token(article))

    @extend_schema(
        request=ArticleWriteSerializer(partial=True),
        parameters=[IF_MATCH_PARAMETER, etag_header(200, 409, 428)],
        responses={
            200: ArticleDetailSerializer,
            **version_error_responses("Article", ArticleDetailSerializer),
        },
        description="Change a draft. Send the ETag of your last GET as If-Match: without it 428, "
        "after someone else's save 409 (both with the current article in `current`); 409 also when "
        "the article is no longer a draft.",
    )
    def patch(self, request: Request, pk: int) -> Response:
        article = self._article(request, pk)
        if not permissions.can_write_articles(request.user):
            raise PermissionDenied("Only support staff may edit articles.")
        if article.status != Article.Status.DRAFT:
            raise Conflict("Only drafts can be edited; reopen the article as a draft first.")
        with api_versions(lambda: self._current(request, pk)):
            expected = if_match(request)
            data = ArticleWriteSerializer(data=request.data, partial=True)
            data.is_valid(raise_exception=True)
            try:
                article = services.article_update(
                    article=article, by=request.user, expected_version=expected, **data.validated_data
                )
            except DjangoValidationError as exc:
                raise _django_errors(exc) from exc
        return with_etag(Response(ArticleDetailSerializer(article).data), version_token(article))


class _TransitionView(generics.GenericAPIView):
    serializer_class = ArticleStatusSerializer
    source_status: str = ""

    def transition(self, *, article: Article, by: Any) -> Article:
        raise NotImplementedError

    @extend_schema(request=None, responses={200: ArticleStatusSerializer})
    def post(self, request: Request, pk: int) -> Response:
        article = article_get_for_user(user=request.user, article_id=pk)
        if not permissions.can_write_articles(request.user):
            raise PermissionDenied("Only support staff may change articles.")
        if article.status != self.source_status:
            raise Conflict(f"The article is {article.status}, not {self.source_status}.")
        article = self.transition(article=article, by=request.user)
        return Response({"id": article.pk, "status": article.status})


class ArticleSubmitView(_TransitionView):
    """The author sends a draft for review."""

    source_status = Article.Status.DRAFT

    def transition(self, *, article: Article, by: Any) -> Article:
        return services.article_submit(article=article, by=by)


class ArticlePublishView(_TransitionView):
    """A reviewer other than the author publishes an article in review."""

    source_status = Article.Status.IN_REVIEW

    def transition(self, *, article: Article, by: Any) -> Article:
        return services.article_publish(article=article, by=by)


class ArticleVersionListView(generics.ListAPIView):
    """Every version of an article, newest first (support staff)."""

    serializer_class = ArticleVersionSerializer

    def get_queryset(self) -> QuerySet[ArticleVersion]:
        article = article_get_for_user(user=self.request.user, article_id=self.kwargs["pk"])
        return article_versions_for_user(user=self.request.user, article=article)
