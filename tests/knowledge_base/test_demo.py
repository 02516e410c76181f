"""Demo data: about thirty articles including the named FAQ and manual; seeding twice changes nothing."""

import io

import pytest

from accounts import demo as accounts_demo
from accounts.models import User
from knowledge_base import demo
from knowledge_base.models import Article, ArticleVersion
from knowledge_base.selectors import ArticleFilters, article_search_for_user

pytestmark = pytest.mark.django_db


def test_seed_is_idempotent_and_searchable():
    accounts_demo.seed(stdout=io.StringIO())
    demo.seed(stdout=io.StringIO())
    count = Article.objects.count()
    demo.seed(stdout=io.StringIO())
    assert Article.objects.count() == count >= 26
    assert ArticleVersion.objects.count() == count
    assert Article.objects.filter(title="邮件发送失败的常见原因", kind="faq", status="published").exists()
    requester = User.objects.get(username="requester")
    found = article_search_for_user(user=requester, filters=ArticleFilters(q="标签"))
    assert "CRM 客户标签配置指南" in [a.title for a in found.queryset]
