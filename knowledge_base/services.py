"""Writes for the knowledge base: one transaction each, audited, side effects after commit."""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import managers
from accounts.services import audit_record, notify
from config.concurrency import check_version
from config.text import name_text
from knowledge_base import permissions
from knowledge_base.models import STALE_AFTER_DAYS, Article, ArticleVersion, Category, Deflection, HelpfulVote
from knowledge_base.segmentation import CJK

log = logging.getLogger(__name__)

Status = Article.Status
EDITABLE_FIELDS = ("title", "summary", "body", "kind", "language", "category", "tags")


class ArticleActionNotAllowed(PermissionDenied):
    """The person may not take this step on this article in its current state."""


def _snapshot(*, article: Article, by: User | None, note: str = "") -> ArticleVersion:
    """Keep the article's current content as its next version."""
    Article.objects.filter(pk=article.pk).update(version_number=F("version_number") + 1)
    article.refresh_from_db(fields=["version_number"])
    return ArticleVersion.objects.create(
        article=article,
        number=article.version_number,
        title=article.title,
        summary=article.summary,
        body=article.body,
        kind=article.kind,
        language=article.language,
        category=article.category,
        status=article.status,
        note=note[:200],
        created_by=by,
    )


def _locked(article: Article) -> Article:
    return Article.objects.select_for_update().get(pk=article.pk)


def _tag_names(tags: list[str] | None) -> list[str]:
    names = (name_text(t)[:40] for t in (tags or []))
    return [t for t in names if t]


@transaction.atomic
def article_create(
    *,
    author: User,
    title: str,
    summary: str,
    body: str,
    kind: str,
    language: str,
    category: Category | None = None,
    related_ticket: Any = None,
    related_campaign: Any = None,
    tags: list[str] | None = None,
) -> Article:
    """Create a draft with its first version, indexed for search (the caller checks who may write)."""
    article = Article(
        owner=author,
        title=name_text(title)[:200],
        summary=(summary or "").strip(),
        body=body or "",
        kind=kind,
        language=language,
        category=category,
        tags=_tag_names(tags),
        status=Status.DRAFT,
    )
    article.full_clean(exclude=["owner", "search_title", "search_summary", "search_body"])
    article.save()
    _snapshot(article=article, by=author, note=_("Created"))
    if related_ticket is not None:
        article.related_tickets.add(related_ticket)
    if related_campaign is not None:
        article.related_campaigns.add(related_campaign)
    audit_record(
        actor=author,
        action="kb.article.create",
        obj=article,
        changes={"title": article.title, "kind": kind, "language": language},
    )
    log.info("article %s created by %s", article.pk, author.pk)
    return article


@transaction.atomic
def article_update(
    *, article: Article, by: User, expected_version: str | None = None, **fields: Any
) -> Article:
    """Change a draft's content; every save keeps a version. A stale `expected_version` is a conflict."""
    article = _locked(article)
    check_version(article, expected_version)
    if not permissions.can_edit(by, article):
        raise ArticleActionNotAllowed(_("Only drafts can be edited; reopen the article as a draft first."))
    changes: dict[str, list[Any]] = {}
    for name, value in fields.items():
        if name not in EDITABLE_FIELDS:
            raise ValueError(f"unknown article field {name}")
        old = getattr(article, name)
        if name == "tags":
            value = _tag_names(value)
        elif name == "title":
            value = name_text(value)[:200]
        if old != value:
            changes[name] = [
                str(old) if name == "category" else old,
                str(value) if name == "category" else value,
            ]
            setattr(article, name, value)
    if not changes:
        return article
    article.full_clean(exclude=["owner", "search_title", "search_summary", "search_body"])
    article.save()
    _snapshot(article=article, by=by, note=_("Edited"))
    audit_record(actor=by, action="kb.article.update", obj=article, changes=changes)
    return article


def _transition(
    *, article: Article, by: User, to: str, allowed: bool, action: str, note: str = "", **extra: Any
) -> Article:
    old = article.status
    if not allowed:
        raise ArticleActionNotAllowed(
            _("You may not move this article from “%(old)s” to “%(new)s”.") % {"old": old, "new": to}
        )
    article.status = to
    for name, value in extra.items():
        setattr(article, name, value)
    article.save(update_fields=["status", "updated_at", *extra])
    audit_record(
        actor=by,
        action=action,
        obj=article,
        changes={"status": [old, to], **({"note": note} if note else {})},
    )
    log.info("article %s %s -> %s by %s", article.pk, old, to, by.pk)
    return article


def _article_url(article: Article) -> str:
    return reverse("knowledge_base:article", args=[article.pk])


@transaction.atomic
def article_submit(*, article: Article, by: User) -> Article:
    """The author sends a draft for review; reviewers (managers) are notified."""
    article = _locked(article)
    article = _transition(
        article=article,
        by=by,
        to=Status.IN_REVIEW,
        allowed=permissions.can_submit(by, article),
        action="kb.article.submit",
    )
    notify(
        recipients=[m for m in managers() if m.pk != by.pk],
        kind="kb.review_requested",
        params={"title": article.title},
        url=_article_url(article),
    )
    return article


@transaction.atomic
def article_publish(*, article: Article, by: User) -> Article:
    """A reviewer other than the author publishes the article."""
    article = _locked(article)
    now = timezone.now()
    article = _transition(
        article=article,
        by=by,
        to=Status.PUBLISHED,
        allowed=permissions.can_review(by, article),
        action="kb.article.publish",
        reviewer=by,
        published_at=now,
        reviewed_at=now,
        stale_flagged_at=None,
    )
    notify(
        recipients=[article.owner],
        kind="kb.published",
        params={"title": article.title},
        url=_article_url(article),
    )
    return article


@transaction.atomic
def article_send_back(*, article: Article, by: User, note: str = "") -> Article:
    """A reviewer returns the article to its author as a draft, with a note."""
    article = _locked(article)
    article = _transition(
        article=article,
        by=by,
        to=Status.DRAFT,
        allowed=permissions.can_review(by, article),
        action="kb.article.send_back",
        note=note,
    )
    notify(
        recipients=[article.owner],
        kind="kb.sent_back",
        params={"title": article.title, "text": note},
        url=_article_url(article),
    )
    return article


@transaction.atomic
def article_archive(*, article: Article, by: User) -> Article:
    """Take a published article out of circulation (owner or manager)."""
    article = _locked(article)
    return _transition(
        article=article,
        by=by,
        to=Status.ARCHIVED,
        allowed=permissions.can_archive(by, article),
        action="kb.article.archive",
    )


@transaction.atomic
def article_reopen(*, article: Article, by: User) -> Article:
    """Bring an article back to draft so it can be changed (owner or manager)."""
    article = _locked(article)
    return _transition(
        article=article,
        by=by,
        to=Status.DRAFT,
        allowed=permissions.can_reopen(by, article),
        action="kb.article.reopen",
    )


@transaction.atomic
def article_restore_version(*, article: Article, version: ArticleVersion, by: User) -> Article:
    """Copy an old version's content into a new draft version."""
    article = _locked(article)
    if version.article_id != article.pk or not permissions.can_restore(by, article):
        raise ArticleActionNotAllowed(_("You may not restore this version."))
    old_status = article.status
    article.title = version.title
    article.summary = version.summary
    article.body = version.body
    article.kind = version.kind
    article.language = version.language
    article.category = version.category
    article.status = Status.DRAFT
    article.save()
    _snapshot(article=article, by=by, note=_("Restored from version %(n)s") % {"n": version.number})
    audit_record(
        actor=by,
        action="kb.article.restore",
        obj=article,
        changes={"version": version.number, "status": [old_status, Status.DRAFT]},
    )
    return article


@transaction.atomic
def article_mark_reviewed(*, article: Article, by: User) -> Article:
    """The owner confirms a published article is still right: resets the 180-day clock."""
    article = _locked(article)
    if not permissions.can_mark_reviewed(by, article):
        raise ArticleActionNotAllowed(_("Only the owner or a manager may confirm this article."))
    article.reviewed_at = timezone.now()
    article.stale_flagged_at = None
    article.save(update_fields=["reviewed_at", "stale_flagged_at", "updated_at"])
    audit_record(actor=by, action="kb.article.reviewed", obj=article)
    return article


@transaction.atomic
def article_vote(*, article: Article, user: User, helpful: bool) -> HelpfulVote:
    """Record (or change) a person's "was this helpful?" answer."""
    vote, _created = HelpfulVote.objects.update_or_create(
        article=article, user=user, defaults={"helpful": helpful}
    )
    return vote


def article_record_view(*, article: Article) -> None:
    """Count one view (a single UPDATE, safe under concurrency)."""
    Article.objects.filter(pk=article.pk).update(view_count=F("view_count") + 1)


@transaction.atomic
def deflection_record(
    *, user: User, article: Article, query: str = "", source: str = "suggestion"
) -> Deflection:
    """A requester says the article solved the problem: no ticket will be filed."""
    if article.status != Status.PUBLISHED:
        raise ArticleActionNotAllowed(_("Only published articles can solve a request."))
    deflection = Deflection.objects.create(
        user=user, article=article, query=(query or "")[:300], source=source
    )
    audit_record(
        actor=user, action="kb.deflection", obj=article, changes={"query": deflection.query, "source": source}
    )
    log.info("deflection on article %s by %s", article.pk, user.pk)
    return deflection


def _retrospective_body(ticket: Any, retro: Any) -> tuple[str, str, str]:
    """Title, summary and Markdown body of a retrospective article, in the ticket's language."""
    chinese = bool(CJK.search(f"{ticket.title}{retro.background}{retro.solution}"))
    if chinese:
        heads = ("背景", "解决方案与步骤", "配置", "经验教训", "关联工单")
        title = f"复盘：{ticket.title}"
    else:
        heads = ("Background", "Solution and steps", "Configuration", "Lessons learned", "Ticket")
        title = f"Retrospective: {ticket.title}"
    parts = [f"## {heads[0]}\n\n{retro.background.strip()}", f"## {heads[1]}\n\n{retro.solution.strip()}"]
    if (retro.configuration or "").strip():
        parts.append(f"## {heads[2]}\n\n```\n{retro.configuration.strip()}\n```")
    if (retro.lessons or "").strip():
        parts.append(f"## {heads[3]}\n\n{retro.lessons.strip()}")
    parts.append(f"## {heads[4]}\n\n{ticket.key}")
    summary = retro.background.strip().splitlines()[0][:300] if retro.background.strip() else ""
    return title[:200], summary, "\n\n".join(parts) + "\n"


RETROSPECTIVE_STATUSES = ("resolved", "closed")


@transaction.atomic
def article_from_ticket(*, ticket: Any, by: User) -> Article:
    """Turn a resolved ticket's retrospective into a draft retrospective article (once per ticket)."""
    if not permissions.can_write_articles(by):
        raise ArticleActionNotAllowed(_("Only support staff may write articles."))
    if ticket.status not in RETROSPECTIVE_STATUSES:
        raise ArticleActionNotAllowed(_("The ticket must be resolved or closed first."))
    retro = getattr(ticket, "retrospective", None)
    if retro is None:
        raise ArticleActionNotAllowed(_("The ticket has no retrospective yet."))
    existing = (
        Article.objects.filter(related_tickets=ticket, kind=Article.Kind.RETROSPECTIVE)
        .exclude(status=Status.ARCHIVED)
        .first()
    )
    if existing is not None:
        return existing
    title, summary, body = _retrospective_body(ticket, retro)
    article = article_create(
        author=by,
        title=title,
        summary=summary,
        body=body,
        kind=Article.Kind.RETROSPECTIVE,
        language=Article.Language.ZH_HANS if CJK.search(title) else Article.Language.EN,
        related_ticket=ticket,
        tags=["retrospective"],
    )
    audit_record(actor=by, action="kb.article.from_ticket", obj=article, changes={"ticket": ticket.key})
    return article


def articles_flag_stale(*, now: datetime | None = None) -> int:
    """Flag published articles not reviewed for 180 days and tell each owner once; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=STALE_AFTER_DAYS)
    with transaction.atomic():
        stale = Article.objects.filter(
            status=Status.PUBLISHED, reviewed_at__lt=cutoff, stale_flagged_at__isnull=True
        )
        owner_ids = list(stale.values_list("owner_id", flat=True).distinct())
        count = stale.update(stale_flagged_at=now)
        if owner_ids:
            notify(
                recipients=User.objects.filter(pk__in=owner_ids),
                kind="kb.stale",
                url=reverse("knowledge_base:stale"),
            )
            audit_record(
                actor=None,
                action="kb.article.flag_stale",
                object_type="knowledge_base.article",
                changes={"count": count},
            )
    log.info("flagged %s stale articles", count)
    return count
