"""Who may do what with knowledge articles: one place, used by the pages, the API and the services."""

from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from accounts.roles import is_agent, is_manager
from knowledge_base.models import Article

Status = Article.Status


def can_write_articles(user: User | AnonymousUser) -> bool:
    """Support staff (agents and managers) write articles; requesters read."""
    return is_agent(user)


def can_view_article(user: User | AnonymousUser, article: Article) -> bool:
    """Staff see every article; everyone else only published ones."""
    return is_agent(user) or (user.is_authenticated and article.status == Status.PUBLISHED)


def can_view_history(user: User | AnonymousUser, article: Article) -> bool:
    """Versions may contain unpublished text: staff only."""
    return is_agent(user)


def _owns_or_manages(user: User | AnonymousUser, article: Article) -> bool:
    return is_agent(user) and (article.owner_id == user.pk or is_manager(user))


def can_edit(user: User | AnonymousUser, article: Article) -> bool:
    """Drafts are edited by staff; what a reviewer approved is exactly what is published."""
    return is_agent(user) and article.status == Status.DRAFT


def can_submit(user: User | AnonymousUser, article: Article) -> bool:
    """The author (owner) sends a draft for review."""
    return article.status == Status.DRAFT and is_agent(user) and article.owner_id == user.pk


def can_review(user: User | AnonymousUser, article: Article) -> bool:
    """A reviewer other than the author publishes or sends back an article in review."""
    return article.status == Status.IN_REVIEW and is_agent(user) and article.owner_id != user.pk


def can_archive(user: User | AnonymousUser, article: Article) -> bool:
    return article.status == Status.PUBLISHED and _owns_or_manages(user, article)


def can_reopen(user: User | AnonymousUser, article: Article) -> bool:
    """Take an article in review, published or archived back to draft to change it."""
    return article.status != Status.DRAFT and _owns_or_manages(user, article)


def can_restore(user: User | AnonymousUser, article: Article) -> bool:
    """Restoring an old version makes a new draft."""
    return article.status != Status.ARCHIVED and is_agent(user)


def can_mark_reviewed(user: User | AnonymousUser, article: Article) -> bool:
    """The owner (or a manager) confirms a published article is still right; clears the stale flag."""
    return article.status == Status.PUBLISHED and _owns_or_manages(user, article)


def can_search_tickets(user: User | AnonymousUser) -> bool:
    """The search mode that also finds ticket titles is for staff."""
    return is_agent(user)
