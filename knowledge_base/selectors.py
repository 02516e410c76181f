"""Reads for the knowledge base, always scoped to the person asking (outside their reach: 404)."""

import difflib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import is_agent
from config.inputs import INT64_MAX, InvalidInput, whole_number
from knowledge_base import permissions
from knowledge_base.models import STALE_AFTER_DAYS, Article, ArticleVersion, Category, HelpfulVote
from knowledge_base.search import ArticleSearch, query_words, search_articles

log = logging.getLogger(__name__)

Status = Article.Status
SUGGESTION_LIMIT = 5
INDEX_COLUMNS = ("search_title", "search_summary", "search_body", "search_vector")
RELATED_LIMIT = 5
RESULT_COLUMNS = (
    "id",
    "title",
    "summary",
    "body",
    "kind",
    "language",
    "status",
    "updated_at",
    "published_at",
    "category",
)


def articles_visible_to(*, user: User | AnonymousUser) -> QuerySet[Article]:
    """Every article for support staff; published articles for everyone else."""
    if is_agent(user):
        return Article.objects.all()
    if not user.is_authenticated:
        return Article.objects.none()
    return Article.objects.filter(status=Status.PUBLISHED)


def article_get_for_user(*, user: User | AnonymousUser, article_id: int) -> Article:
    """One article with its owner, reviewer and category, or Http404 outside the person's reach."""
    article = (
        articles_visible_to(user=user)
        .select_related("owner", "reviewer", "category", "category__parent")
        .filter(pk=article_id)
        .first()
    )
    if article is None:
        raise Http404("No such article.")
    return article


@dataclass
class ArticleFilters:
    """Browse and search filters shared by the page and the API."""

    q: str = ""
    category: int | None = None
    kind: str = ""
    language: str = ""
    status: str = ""

    @classmethod
    def from_params(cls, params: Any, *, strict: bool = False) -> "ArticleFilters":
        """The filters in `params`: a malformed value is ignored (the page), or with `strict` (the API)
        raises InvalidInput naming the parameter."""

        def checked(name: str, parse: Any, default: Any) -> Any:
            if strict and hasattr(params, "getlist") and len(params.getlist(name)) > 1:
                raise InvalidInput(_("Give this parameter once."), code="repeated", field=name)
            value = str(params.get(name) or "").strip()
            if not value:
                return default
            try:
                return parse(value)
            except InvalidInput as exc:
                if strict:
                    raise exc.at(name) from exc
                return default

        def number(name: str) -> int | None:
            return checked(name, lambda value: whole_number(value, minimum=1, maximum=INT64_MAX), None)

        def choice(name: str, allowed: list[str]) -> str:
            def parse(value: str) -> str:
                if value not in allowed:
                    raise InvalidInput(_("Choose one of: %(choices)s.") % {"choices": ", ".join(allowed)})
                return value

            return checked(name, parse, "")

        return cls(
            q=str(params.get("q") or "").strip()[:200],
            category=number("category"),
            kind=choice("kind", Article.Kind.values),
            language=choice("language", Article.Language.values),
            status=choice("status", Status.values),
        )


def _filtered(*, user: User | AnonymousUser, filters: ArticleFilters) -> QuerySet[Article]:
    qs = articles_visible_to(user=user)
    if filters.category is not None:
        # The category and its direct children (the tree is shallow: section → topic).
        qs = qs.filter(Q(category_id=filters.category) | Q(category__parent_id=filters.category))
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.language:
        qs = qs.filter(language=filters.language)
    if filters.status and is_agent(user):
        qs = qs.filter(status=filters.status)
    elif not filters.status:
        qs = qs.exclude(status=Status.ARCHIVED)
    return qs


def _search_scope(*, user: User | AnonymousUser, filters: ArticleFilters) -> str | None:
    """Who sees what (staff: every article; others: published ones) and the filters: searches with
    the same scope run over the same articles, so they may share cached counts."""
    if not user.is_authenticated:
        return None
    audience = "staff" if is_agent(user) else "published"
    return f"{audience}|{filters.category}|{filters.kind}|{filters.language}|{filters.status}"


def article_search_for_user(*, user: User | AnonymousUser, filters: ArticleFilters) -> ArticleSearch:
    """Ranked search (published only for requesters); without a query, the newest articles first."""
    # Only what a result shows (the page: title, kind, status, category, date; the API: id, title,
    # snippet, kind, language, status); the index's own columns are large and never shown.
    qs = _filtered(user=user, filters=filters).select_related("category").only(*RESULT_COLUMNS)
    if filters.q:
        return search_articles(qs, filters.q, cache_scope=_search_scope(user=user, filters=filters))
    return ArticleSearch("", qs.order_by("-updated_at", "-id"))


def article_suggestions_for_title(*, user: User | AnonymousUser, title: str) -> ArticleSearch:
    """Up to five published articles matching what a requester is typing as a ticket title."""
    title = (title or "").strip()[:200]
    qs = Article.objects.filter(status=Status.PUBLISHED).defer(*INDEX_COLUMNS, "body")
    if not user.is_authenticated:
        qs = qs.none()
    if len(title) < 2 or not query_words(title):
        return ArticleSearch(title, qs.none())
    search = search_articles(qs, title, prefer_any=True)
    search.queryset = search.queryset[:SUGGESTION_LIMIT]
    return search


def tickets_matching_for_agent(*, user: User | AnonymousUser, text: str, limit: int = 10) -> list[Any]:
    """Ticket titles matching every word of the query (staff only; via the tickets app's scoped selector)."""
    if not permissions.can_search_tickets(user):
        return []
    from tickets.selectors import tickets_visible_to

    words = query_words(text)
    if not words:
        return []
    qs = tickets_visible_to(user=user)
    for word in words:
        qs = qs.filter(title__icontains=word)
    return list(qs.select_related("team").order_by("-updated_at")[:limit])


def categories_with_counts(*, user: User | AnonymousUser) -> list[Category]:
    """The category tree (top level, children prefetched) with the number of visible articles in each."""
    visible = Q(articles__status=Status.PUBLISHED)
    if is_agent(user):
        visible = ~Q(articles__status=Status.ARCHIVED)
    children = Category.objects.annotate(article_count=Count("articles", filter=visible)).order_by(
        "position", "name"
    )
    return list(
        Category.objects.filter(parent__isnull=True)
        .annotate(article_count=Count("articles", filter=visible))
        .prefetch_related(Prefetch("children", queryset=children))
        .order_by("position", "name")
    )


def article_helpful_counts(*, article: Article) -> dict[str, int]:
    """How many said yes and no to "was this helpful?"."""
    return HelpfulVote.objects.filter(article=article).aggregate(
        yes=Count("id", filter=Q(helpful=True)), no=Count("id", filter=Q(helpful=False))
    )


def article_vote_of(*, article: Article, user: User | AnonymousUser) -> bool | None:
    if not user.is_authenticated:
        return None
    return HelpfulVote.objects.filter(article=article, user=user).values_list("helpful", flat=True).first()


def related_articles_for(*, user: User | AnonymousUser, article: Article) -> list[Article]:
    """Linked articles first, then others of the same category, then similar titles; visible ones only."""
    visible = articles_visible_to(user=user).exclude(pk=article.pk).exclude(status=Status.ARCHIVED)
    linked = list(visible.filter(related=article).order_by("title")[:RELATED_LIMIT])
    if len(linked) >= RELATED_LIMIT:
        return linked
    seen = [a.pk for a in linked]
    query = Q(category_id=article.category_id) if article.category_id else Q(kind=article.kind)
    more = list(
        visible.filter(query)
        .exclude(pk__in=seen)
        .order_by("-view_count", "-id")[: RELATED_LIMIT - len(linked)]
    )
    return linked + more


def article_versions_for_user(*, user: User | AnonymousUser, article: Article) -> QuerySet[ArticleVersion]:
    """The article's versions, newest first (staff only)."""
    if not permissions.can_view_history(user, article):
        raise Http404("No such article.")
    return ArticleVersion.objects.filter(article=article).select_related("created_by").order_by("-number")


def article_version_get(*, user: User | AnonymousUser, article: Article, number: int) -> ArticleVersion:
    version = article_versions_for_user(user=user, article=article).filter(number=number).first()
    if version is None:
        raise Http404("No such version.")
    return version


@dataclass
class DiffLine:
    op: str  # "equal", "insert", "delete"
    text: str


@dataclass
class FieldDiff:
    name: str
    lines: list[DiffLine]
    changed: bool
    label: str = ""  # the field's name in the reader's language ("body" reads 正文)


def version_diff(*, old: ArticleVersion, new: ArticleVersion) -> list[FieldDiff]:
    """Line diff of title, summary and body between two versions (text stays unescaped: templates escape)."""
    result = []
    for name in ("title", "summary", "body"):
        a = (getattr(old, name) or "").splitlines()
        b = (getattr(new, name) or "").splitlines()
        lines: list[DiffLine] = []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if op == "equal":
                lines += [DiffLine("equal", line) for line in a[i1:i2]]
            else:
                lines += [DiffLine("delete", line) for line in a[i1:i2]]
                lines += [DiffLine("insert", line) for line in b[j1:j2]]
        label = str(capfirst(ArticleVersion._meta.get_field(name).verbose_name))
        result.append(FieldDiff(name, lines, a != b, label))
    return result


def stale_articles_for_owner(*, user: User | AnonymousUser) -> QuerySet[Article]:
    """Published articles not reviewed for 180 days (or flagged) that this person owns; managers see all."""
    from accounts.roles import is_manager

    cutoff = timezone.now() - timedelta(days=STALE_AFTER_DAYS)
    qs = Article.objects.filter(status=Status.PUBLISHED).filter(
        Q(stale_flagged_at__isnull=False) | Q(reviewed_at__lt=cutoff)
    )
    if not is_manager(user):
        qs = qs.filter(owner_id=user.pk) if is_agent(user) else qs.none()
    return qs.select_related("owner", "category").order_by("reviewed_at", "id")


def articles_waiting_for_review(*, user: User | AnonymousUser) -> QuerySet[Article]:
    """Articles in review that this person may review (not their own)."""
    if not is_agent(user):
        return Article.objects.none()
    return (
        Article.objects.filter(status=Status.IN_REVIEW)
        .exclude(owner_id=user.pk)
        .select_related("owner", "category")
        .order_by("updated_at")
    )


def my_drafts(*, user: User | AnonymousUser) -> QuerySet[Article]:
    if not is_agent(user):
        return Article.objects.none()
    return (
        Article.objects.filter(owner_id=user.pk, status__in=[Status.DRAFT, Status.IN_REVIEW])
        .select_related("category")
        .order_by("-updated_at")
    )
