"""Article factories: go through the services so versions and the index are real."""

from accounts.models import User
from knowledge_base.models import Article, Category
from knowledge_base.services import article_create, article_publish, article_submit


def make_article(
    owner: User,
    *,
    title: str = "Article",
    summary: str = "",
    body: str = "",
    kind: str = "faq",
    language: str = "en",
    category: Category | None = None,
) -> Article:
    """A draft written by `owner`."""
    return article_create(
        author=owner, title=title, summary=summary, body=body, kind=kind, language=language, category=category
    )


def make_published(owner: User, reviewer: User, **kwargs) -> Article:
    """An article written by `owner`, submitted, and published by `reviewer`."""
    article = make_article(owner, **kwargs)
    article_submit(article=article, by=owner)
    return article_publish(article=article, by=reviewer)


def make_category(name: str = "CRM", slug: str = "crm", parent: Category | None = None) -> Category:
    return Category.objects.create(name=name, slug=slug, parent=parent)
