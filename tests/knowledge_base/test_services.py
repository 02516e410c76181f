"""Workflow, versions and restore, stale flags, deflections and ticket → article, through the services."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from accounts.models import AuditEntry, Notification
from knowledge_base import services
from knowledge_base.models import Article, ArticleVersion, Deflection
from tests.knowledge_base.factories import make_article

pytestmark = pytest.mark.django_db
S = Article.Status


def test_article_create_makes_a_draft_with_its_first_version_and_an_audit_entry(agent):
    article = make_article(agent, title="客户标签配置指南", body="正文")
    assert article.status == S.DRAFT and article.version_number == 1
    assert ArticleVersion.objects.get(article=article).title == "客户标签配置指南"
    assert AuditEntry.objects.filter(action="kb.article.create", object_id=str(article.pk)).exists()


def test_article_create_links_a_campaign(agent, requester):
    from tests.campaigns.factories import campaign_make

    campaign = campaign_make(owner=requester)
    article = services.article_create(
        author=agent,
        title="Review",
        summary="",
        body="",
        kind="retrospective",
        language="en",
        related_campaign=campaign,
    )
    assert list(article.related_campaigns.all()) == [campaign]


def test_every_edit_keeps_a_version(agent):
    article = make_article(agent, title="v1")
    services.article_update(article=article, by=agent, title="v2", body="more")
    services.article_update(article=article, by=agent, body="even more")
    assert list(article.versions.values_list("number", "title")) == [(3, "v2"), (2, "v2"), (1, "v1")]


def test_an_edit_that_changes_nothing_keeps_no_version(agent):
    article = make_article(agent, title="same")
    services.article_update(article=article, by=agent, title="same")
    assert article.versions.count() == 1


def test_author_submits_and_another_reviewer_publishes(agent, manager):
    article = make_article(agent)
    services.article_submit(article=article, by=agent)
    article = services.article_publish(article=article, by=manager)
    assert article.status == S.PUBLISHED and article.reviewer == manager
    assert article.reviewed_at is not None and article.published_at is not None


def test_submitting_notifies_managers(agent, manager):
    article = make_article(agent)
    services.article_submit(article=article, by=agent)
    assert Notification.objects.filter(recipient=manager, verb="kb.review_requested").exists()


def test_author_cannot_publish_own_article(manager, agent):
    article = make_article(manager)
    services.article_submit(article=article, by=manager)
    with pytest.raises(services.ArticleActionNotAllowed):
        services.article_publish(article=article, by=manager)
    assert Article.objects.get(pk=article.pk).status == S.IN_REVIEW


def test_requester_cannot_review(agent, requester):
    article = make_article(agent)
    services.article_submit(article=article, by=agent)
    with pytest.raises(services.ArticleActionNotAllowed):
        services.article_publish(article=article, by=requester)


def test_only_the_author_submits(agent, agent2):
    article = make_article(agent)
    with pytest.raises(services.ArticleActionNotAllowed):
        services.article_submit(article=article, by=agent2)


def test_a_draft_cannot_be_published_without_review(agent, manager):
    article = make_article(agent)
    with pytest.raises(services.ArticleActionNotAllowed):
        services.article_publish(article=article, by=manager)


def test_reviewer_sends_back_with_a_note(agent, manager):
    article = make_article(agent)
    services.article_submit(article=article, by=agent)
    article = services.article_send_back(article=article, by=manager, note="Add screenshots")
    assert article.status == S.DRAFT
    assert Notification.objects.filter(recipient=agent, verb="kb.sent_back", body="Add screenshots").exists()


def test_published_articles_are_not_edited_in_place(published, agent):
    with pytest.raises(services.ArticleActionNotAllowed):
        services.article_update(article=published, by=agent, title="changed")


def test_owner_archives_and_reopens(published, agent):
    services.article_archive(article=published, by=agent)
    article = services.article_reopen(article=published, by=agent)
    assert article.status == S.DRAFT


def test_restore_old_version_makes_a_new_draft(published, agent, manager):
    services.article_reopen(article=published, by=agent)
    services.article_update(article=published, by=agent, title="Changed title")
    first = published.versions.get(number=1)
    with translation.override("en"):
        article = services.article_restore_version(article=published, version=first, by=agent)
    assert article.status == S.DRAFT and article.title == "CRM 客户标签配置指南"
    assert article.version_number == 3
    assert published.versions.get(number=3).note.startswith("Restored from version 1")


def test_restore_rejects_a_version_of_another_article(published, draft, agent):
    with pytest.raises(services.ArticleActionNotAllowed):
        services.article_restore_version(article=draft, version=published.versions.first(), by=agent)


def test_helpful_vote_can_be_changed(published, requester):
    services.article_vote(article=published, user=requester, helpful=True)
    services.article_vote(article=published, user=requester, helpful=False)
    assert list(published.votes.values_list("helpful", flat=True)) == [False]


def test_view_count_goes_up(published):
    services.article_record_view(article=published)
    services.article_record_view(article=published)
    published.refresh_from_db()
    assert published.view_count == 2


def test_deflection_is_recorded(published, requester):
    services.deflection_record(user=requester, article=published, query="标签怎么配")
    row = Deflection.objects.get()
    assert (row.user, row.article, row.query) == (requester, published, "标签怎么配")


def test_a_draft_cannot_deflect(draft, requester):
    with pytest.raises(services.ArticleActionNotAllowed):
        services.deflection_record(user=requester, article=draft, query="x")


def test_stale_articles_are_flagged_once_and_owner_notified(published, agent):
    Article.objects.filter(pk=published.pk).update(reviewed_at=timezone.now() - timedelta(days=181))
    assert services.articles_flag_stale() == 1
    assert services.articles_flag_stale() == 0
    assert Notification.objects.filter(recipient=agent, verb="kb.stale").count() == 1


def test_recently_reviewed_articles_are_not_stale(published):
    Article.objects.filter(pk=published.pk).update(reviewed_at=timezone.now() - timedelta(days=179))
    assert services.articles_flag_stale() == 0


def test_mark_reviewed_clears_the_stale_flag(published, agent):
    Article.objects.filter(pk=published.pk).update(stale_flagged_at=timezone.now())
    article = services.article_mark_reviewed(article=published, by=agent)
    assert article.stale_flagged_at is None


def test_stale_task_runs_the_service(published):
    from knowledge_base.tasks import flag_stale_articles

    Article.objects.filter(pk=published.pk).update(reviewed_at=timezone.now() - timedelta(days=200))
    assert flag_stale_articles.delay().get() == 1


def test_beat_schedules_the_stale_task(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["kb-stale-articles"]
    assert entry["task"] == "knowledge_base.tasks.flag_stale_articles"
