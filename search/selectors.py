"""The global search: one box that finds requests, campaigns, customers and articles, each through its
own app's scoped selector (what the person may see, personal values as they may see them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from campaigns.selectors import campaign_list
from crm_tags.selectors import customers_for_user, customers_shown
from knowledge_base.search import highlight_title
from knowledge_base.selectors import ArticleFilters, article_search_for_user
from tickets.selectors import ticket_search_for_user

GROUP_LIMIT = 5
MAX_QUERY = 200


@dataclass
class SearchResults:
    """Up to GROUP_LIMIT hits per group."""

    query: str
    tickets: list[Any] = field(default_factory=list)
    campaigns: list[Any] = field(default_factory=list)
    customers: list[Any] = field(default_factory=list)
    articles: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.tickets or self.campaigns or self.customers or self.articles)


def search_query(text: Any) -> str:
    """The text as searched: trimmed, bounded, control characters dropped."""
    cleaned = "".join(ch for ch in str(text or "") if ch.isprintable())
    return " ".join(cleaned.split())[:MAX_QUERY]


def global_search(*, user: User | AnonymousUser, text: str, limit: int = GROUP_LIMIT) -> SearchResults:
    """Every group searched for `text` as this person may see it. Customers are matched on personal values
    (name, e-mail, phone) only for viewers who may see them, and come back masked for everyone else."""
    results = SearchResults(query=text)
    if not text or not user.is_authenticated:
        return results
    results.tickets = ticket_search_for_user(user=user, text=text, limit=limit)
    results.campaigns = list(campaign_list(user=user, q=text)[:limit])
    results.customers = customers_shown(
        list(customers_for_user(user=user, q=text)[:limit]), user=user, what="global search"
    )
    search = article_search_for_user(user=user, filters=ArticleFilters(q=text))
    results.articles = [
        {
            "article": article,
            "title": highlight_title(article.title, search.terms, search.stems),
            "snippet": search.snippet(article),
        }
        for article in search.queryset[:limit]
    ]
    return results
