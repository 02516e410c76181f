"""Knowledge articles: categories, the review workflow, every version, votes, views and deflections."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from config.concurrency import Versioned
from knowledge_base.search_cache import invalidate_search_counts_on_commit
from knowledge_base.segmentation import segment

STALE_AFTER_DAYS = 180
# What decides whether an article is a hit and for whom: a save touching these starts a new
# generation of cached search counts.
SEARCH_COUNT_FIELDS = frozenset(
    {"title", "summary", "body", "status", "category", "category_id", "kind", "language"}
)


class Category(models.Model):
    """A node of the category tree (a category may have a parent)."""

    name = models.CharField(_("name"), max_length=100)
    name_zh = models.CharField(_("Chinese name"), max_length=100, blank=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return f"{self.name_zh} / {self.name}" if self.name_zh else self.name


def _search_vector() -> SearchVector:
    """Title (A) > summary (B) > body (C); each segmented text indexed twice: `simple` and stemmed `english`."""
    vector = None
    for column, weight in (("search_title", "A"), ("search_summary", "B"), ("search_body", "C")):
        for config in ("simple", "english"):
            part = SearchVector(column, config=config, weight=weight)
            vector = part if vector is None else vector + part
    return vector


def _cjk_ngrams() -> models.Func:
    """Every CJK character and pair of adjacent CJK characters of title, summary and body, computed by
    Postgres (`kb_cjk_ngrams`, migration 0005), so also for rows written in bulk: an article containing
    a Chinese word holds all of the word's pairs, whatever jieba made of the text around it."""
    return models.Func(
        models.F("title"),
        models.F("summary"),
        models.F("body"),
        function="kb_cjk_ngrams",
        output_field=ArrayField(models.TextField()),
    )


class ArticleQuerySet(models.QuerySet):
    """Bulk writes (admin actions, scripts) start a new generation of cached search counts too."""

    def delete(self) -> tuple[int, dict[str, int]]:
        result = super().delete()
        if result[0]:
            invalidate_search_counts_on_commit()
        return result

    delete.alters_data = True
    delete.queryset_only = True

    def update(self, **kwargs) -> int:
        rows = super().update(**kwargs)
        if rows and SEARCH_COUNT_FIELDS & set(kwargs):
            invalidate_search_counts_on_commit()
        return rows

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs) -> list:  # noqa: ANN001 - Django's signature
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            invalidate_search_counts_on_commit()
        return created


class Article(Versioned):
    """A knowledge article; only published ones are visible to requesters."""

    # Counters and the review clock, kept by tasks and page views: no editor holds them.
    unversioned_fields = frozenset({"view_count", "reviewed_at", "stale_flagged_at"})

    class Kind(models.TextChoices):
        FAQ = "faq", _("FAQ")
        MANUAL = "manual", _("Manual")
        TUTORIAL = "tutorial", _("Tutorial")
        RETROSPECTIVE = "retrospective", _("Retrospective")

    class Language(models.TextChoices):
        ZH_HANS = "zh-hans", _("Simplified Chinese")
        EN = "en", _("English")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        IN_REVIEW = "in_review", _("In review")
        PUBLISHED = "published", _("Published")
        ARCHIVED = "archived", _("Archived")

    title = models.CharField(_("title"), max_length=200)
    summary = models.CharField(_("summary"), max_length=500, blank=True)
    body = models.TextField(_("body (Markdown)"), blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.FAQ)
    language = models.CharField(
        _("language"), max_length=10, choices=Language.choices, default=Language.ZH_HANS
    )
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="articles",
    )
    tags = ArrayField(models.CharField(max_length=40), verbose_name=_("tags"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="kb_articles",
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="kb_reviewed_articles",
    )
    related = models.ManyToManyField("self", verbose_name=_("related articles"), blank=True, symmetrical=True)
    related_tickets = models.ManyToManyField(
        "tickets.Ticket", verbose_name=_("related tickets"), blank=True, related_name="kb_articles"
    )
    related_campaigns = models.ManyToManyField(
        "campaigns.Campaign", verbose_name=_("related campaigns"), blank=True, related_name="kb_articles"
    )
    version_number = models.PositiveIntegerField(_("version"), default=0)
    view_count = models.PositiveIntegerField(_("views"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    reviewed_at = models.DateTimeField(
        _("last reviewed"), null=True, blank=True, help_text=_("Stale after 180 days without a review.")
    )
    stale_flagged_at = models.DateTimeField(_("flagged stale"), null=True, blank=True)
    # Segmented copies (jieba) that the generated tsvector reads; kept in step by save().
    search_title = models.TextField(editable=False, default="")
    search_summary = models.TextField(editable=False, default="")
    search_body = models.TextField(editable=False, default="")
    search_vector = models.GeneratedField(
        expression=_search_vector(), output_field=SearchVectorField(), db_persist=True
    )
    search_ngrams = models.GeneratedField(
        expression=_cjk_ngrams(), output_field=ArrayField(models.TextField()), db_persist=True
    )

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("article")
        verbose_name_plural = _("articles")
        indexes = [
            # fastupdate off: an article save writes its entries into the index at once, instead of a
            # pending list that every search would scan until (auto)vacuum merges it (5-10 ms per
            # scan at 20,000 articles after a bulk import). Articles are saved rarely, searched often.
            GinIndex(fields=["search_vector"], name="kb_article_search", fastupdate=False),
            # What requesters search (published only): without it the planner ANDs the GIN bitmap
            # with a bitmap of every published article from the status index (2-3 times slower).
            GinIndex(
                fields=["search_vector"],
                name="kb_article_search_published",
                condition=models.Q(status="published"),
                fastupdate=False,
            ),
            GinIndex(
                fields=["title"], name="kb_article_title_trgm", opclasses=["gin_trgm_ops"], fastupdate=False
            ),
            # Chinese words as substrings: `search_ngrams @> '{获客}'` (the same pair for requesters).
            GinIndex(fields=["search_ngrams"], name="kb_article_ngrams", fastupdate=False),
            GinIndex(
                fields=["search_ngrams"],
                name="kb_article_ngrams_published",
                condition=models.Q(status="published"),
                fastupdate=False,
            ),
            models.Index(fields=["status", "-updated_at"], name="kb_article_status"),
            models.Index(fields=["owner", "status"], name="kb_article_owner"),
            models.Index(fields=["category", "status"], name="kb_article_category"),
            models.Index(fields=["kind", "status"], name="kb_article_kind"),
            models.Index(fields=["status", "reviewed_at"], name="kb_article_review"),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        # The index is updated on every save: segmented text here, the generated tsvector in Postgres.
        update_fields = kwargs.get("update_fields")
        if update_fields is None:
            self.refresh_search_text()
        elif {"title", "summary", "body"} & set(update_fields):
            self.refresh_search_text()
            kwargs["update_fields"] = set(update_fields) | {"search_title", "search_summary", "search_body"}
        super().save(*args, **kwargs)
        if update_fields is None or SEARCH_COUNT_FIELDS & set(update_fields):
            invalidate_search_counts_on_commit()

    def get_absolute_url(self) -> str:
        return reverse("knowledge_base:article", args=[self.pk])

    def delete(self, *args, **kwargs):  # noqa: ANN201 - Django's signature
        result = super().delete(*args, **kwargs)
        invalidate_search_counts_on_commit()
        return result

    def refresh_search_text(self) -> None:
        """Segment title, summary and body for the index (the tsvector column follows in the database)."""
        self.search_title = segment(self.title)
        self.search_summary = segment(self.summary)
        self.search_body = segment(self.body)


class ArticleVersion(models.Model):
    """An immutable snapshot written on every save of an article."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    summary = models.CharField(_("summary"), max_length=500, blank=True)
    body = models.TextField(_("body"), blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Article.Kind.choices)
    language = models.CharField(_("language"), max_length=10, choices=Article.Language.choices)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=20, choices=Article.Status.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("saved"), auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        verbose_name = _("article version")
        verbose_name_plural = _("article versions")
        constraints = [
            models.UniqueConstraint(fields=["article", "number"], name="kb_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.article_id} v{self.number}"


class HelpfulVote(models.Model):
    """One person's "was this helpful?" answer for an article (they may change it)."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    helpful = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "user"], name="kb_vote_once")]


class Deflection(models.Model):
    """A requester who left without filing a ticket because an article solved the problem."""

    class Source(models.TextChoices):
        SUGGESTION = "suggestion", _("Suggestion on the request form")
        ARTICLE = "article", _("Article page")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="kb_deflections"
    )
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="deflections")
    query = models.CharField(_("query"), max_length=300, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SUGGESTION)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["article", "-created_at"], name="kb_deflection_article")]

    def __str__(self) -> str:
        return f"{self.article_id} {self.created_at:%Y-%m-%d}"


@receiver(post_delete, sender=Category)
def _category_deleted(**kwargs) -> None:
    # Its articles lost their category (SET_NULL, written by the deletion collector, not by save()).
    invalidate_search_counts_on_commit()
