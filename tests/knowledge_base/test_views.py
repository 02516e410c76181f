"""Pages: search and browse, article, editor, history, suggestions and deflection; allow and deny."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from knowledge_base import services
from knowledge_base.models import Article, Deflection, HelpfulVote
from tests.knowledge_base.factories import make_article, make_category, make_published

pytestmark = pytest.mark.django_db


def test_index_shows_highlighted_results(client_for, search_corpus, requester):
    html = client_for(requester).get(reverse("knowledge_base:index"), {"q": "标签"}).content.decode()
    assert "CRM 客户<mark>标签</mark>配置指南" in html


def test_index_htmx_gets_just_the_results(client_for, search_corpus, requester):
    response = client_for(requester).get(
        reverse("knowledge_base:index"), {"q": "标签"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "kb-result-list" in html and "<html" not in html


def test_index_empty_state(client_for, requester):
    html = (
        client_for(requester)
        .get(reverse("knowledge_base:index"), {"q": "nothing-like-this"})
        .content.decode()
    )
    assert 'class="empty-state"' in html and "kb-result-list" not in html


def test_index_lists_categories_with_counts(client_for, agent, manager, requester):
    parent = make_category("CRM", "crm")
    child = make_category("Tags", "tags", parent=parent)
    make_published(agent, manager, title="Tag rules", category=child)
    html = client_for(requester).get(reverse("knowledge_base:index")).content.decode()
    assert 'id="kb-categories"' in html and "Tags" in html


def test_category_filter_includes_children(client_for, agent, manager, requester):
    parent = make_category("CRM", "crm")
    child = make_category("Tags", "tags", parent=parent)
    inside = make_published(agent, manager, title="Tag rules", category=child)
    make_published(agent, manager, title="Elsewhere")
    response = client_for(requester).get(reverse("knowledge_base:index"), {"category": parent.pk})
    assert [r["article"].pk for r in response.context["results"]] == [inside.pk]


def test_ticket_title_mode_for_agents(client_for, agent, requester):
    from tests.tickets.factories import make_ticket

    ticket = make_ticket(requester, title="标签规则不生效")
    html = (
        client_for(agent)
        .get(reverse("knowledge_base:index"), {"q": "标签", "mode": "tickets"})
        .content.decode()
    )
    assert ticket.key in html


def test_ticket_title_mode_is_ignored_for_requesters(client_for, requester):
    from tests.tickets.factories import make_ticket

    ticket = make_ticket(requester, title="标签规则不生效")
    html = (
        client_for(requester)
        .get(reverse("knowledge_base:index"), {"q": "标签", "mode": "tickets"})
        .content.decode()
    )
    assert ticket.key not in html


def test_index_query_count(client_for, agent, manager, requester, django_assert_max_num_queries):
    category = make_category()
    for n in range(10):
        make_published(agent, manager, title=f"标签 article {n}", category=category)
    client = client_for(requester)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("knowledge_base:index"), {"q": "标签"}).status_code == 200


def test_index_query_count_for_agents(client_for, agent, manager, django_assert_max_num_queries):
    for n in range(10):
        make_article(agent, title=f"Draft {n}")
    client = client_for(agent)
    with django_assert_max_num_queries(16):
        assert client.get(reverse("knowledge_base:index")).status_code == 200


def test_article_page_renders_sanitised_markdown(client_for, agent, manager, requester):
    article = make_published(
        agent,
        manager,
        title="Markdown",
        body="# Head\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode()\n```\n\n![logo](/static/logo.png)",
    )
    html = client_for(requester).get(article.get_absolute_url()).content.decode()
    body = html.split('id="article-body">')[1].split("</div>")[0]
    assert "<script>" not in body and "javascript:" not in body
    assert (
        "<table>" in body and "<pre><code>code()" in body and '<img alt="logo" src="/static/logo.png"' in body
    )


def test_article_page_counts_a_view(client_for, published, requester):
    client_for(requester).get(published.get_absolute_url())
    published.refresh_from_db()
    assert published.view_count == 1


def test_requester_gets_404_for_a_draft(client_for, draft, requester):
    assert client_for(requester).get(draft.get_absolute_url()).status_code == 404


def test_article_page_shows_related_articles(client_for, agent, manager, requester):
    category = make_category()
    one = make_published(agent, manager, title="One", category=category)
    make_published(agent, manager, title="Two", category=category)
    html = client_for(requester).get(one.get_absolute_url()).content.decode()
    assert 'id="related-articles"' in html and "Two" in html


def test_article_page_query_count(client_for, published, requester, django_assert_max_num_queries):
    client = client_for(requester)
    with django_assert_max_num_queries(14):
        assert client.get(published.get_absolute_url()).status_code == 200


def test_helpful_vote_htmx(client_for, published, requester):
    response = client_for(requester).post(
        reverse("knowledge_base:article_helpful", args=[published.pk]),
        {"helpful": "yes"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and 'id="helpful-thanks"' in response.content.decode()
    assert HelpfulVote.objects.get().helpful is True


def test_helpful_vote_on_a_draft_is_404_for_requesters(client_for, draft, requester):
    response = client_for(requester).post(
        reverse("knowledge_base:article_helpful", args=[draft.pk]), {"helpful": "yes"}
    )
    assert response.status_code == 404


def test_agent_writes_a_draft_through_the_editor(client_for, agent):
    response = client_for(agent).post(
        reverse("knowledge_base:article_new"),
        {
            "title": "灰度发布检查清单",
            "summary": "s",
            "body": "b",
            "kind": "manual",
            "language": "zh-hans",
            "tags": "a, b",
        },
    )
    article = Article.objects.get()
    assert response.status_code == 302 and article.tags == ["a", "b"] and article.status == "draft"


def test_editor_shows_errors_under_fields(client_for, agent):
    response = client_for(agent).post(reverse("knowledge_base:article_new"), {"title": "", "kind": "faq"})
    assert response.status_code == 422 and 'data-error-for="title"' in response.content.decode()


def test_requester_may_not_open_the_editor(client_for, requester):
    assert client_for(requester).get(reverse("knowledge_base:article_new")).status_code == 403


def test_edit_page_for_a_draft(client_for, draft, agent):
    response = client_for(agent).post(
        reverse("knowledge_base:article_edit", args=[draft.pk]),
        {
            "title": "Edited",
            "summary": "",
            "body": "x",
            "kind": "faq",
            "language": "en",
            "tags": "",
            "version": draft.lock_version,
        },
    )
    draft.refresh_from_db()
    assert response.status_code == 302 and draft.title == "Edited" and draft.version_number == 2


def test_edit_page_refused_for_published(client_for, published, agent):
    assert (
        client_for(agent).get(reverse("knowledge_base:article_edit", args=[published.pk])).status_code == 403
    )


def test_markdown_preview_is_sanitised(client_for, agent):
    response = client_for(agent).post(
        reverse("knowledge_base:preview"), {"body": "**hi** <script>x()</script>"}
    )
    html = response.content.decode()
    assert "<strong>hi</strong>" in html and "<script>" not in html


def test_markdown_preview_denied_to_requesters(client_for, requester):
    assert client_for(requester).post(reverse("knowledge_base:preview"), {"body": "x"}).status_code == 403


def test_workflow_buttons_submit_and_publish(client_for, draft, agent, manager):
    client_for(agent).post(reverse("knowledge_base:article_action", args=[draft.pk, "submit"]))
    client_for(manager).post(reverse("knowledge_base:article_action", args=[draft.pk, "publish"]))
    draft.refresh_from_db()
    assert draft.status == "published"


def test_publish_button_refused_to_the_author(client_for, draft, agent):
    client_for(agent).post(reverse("knowledge_base:article_action", args=[draft.pk, "submit"]))
    response = client_for(agent).post(reverse("knowledge_base:article_action", args=[draft.pk, "publish"]))
    assert response.status_code == 403


def test_send_back_needs_a_note(client_for, draft, agent, manager):
    client_for(agent).post(reverse("knowledge_base:article_action", args=[draft.pk, "submit"]))
    client_for(manager).post(
        reverse("knowledge_base:article_action", args=[draft.pk, "send-back"]), {"note": ""}
    )
    draft.refresh_from_db()
    assert draft.status == "in_review"


def test_unknown_action_is_404(client_for, draft, agent):
    assert (
        client_for(agent)
        .post(reverse("knowledge_base:article_action", args=[draft.pk, "explode"]))
        .status_code
        == 404
    )


def test_history_shows_a_diff_between_two_versions(client_for, draft, agent):
    services.article_update(article=draft, by=agent, body="Coupon redemption steps\nNew line")
    url = reverse("knowledge_base:article_history", args=[draft.pk])
    html = client_for(agent).get(url, {"a": 1, "b": 2}).content.decode()
    assert 'class="d-block bg-success-subtle diff-insert">+ New line' in html


def test_history_hidden_from_requesters(client_for, published, requester):
    assert (
        client_for(requester).get(reverse("knowledge_base:article_history", args=[published.pk])).status_code
        == 404
    )


def test_history_query_count(client_for, draft, agent, django_assert_max_num_queries):
    for n in range(5):
        services.article_update(article=draft, by=agent, body=f"v{n}")
    client = client_for(agent)
    # session, user, 2 × permissions, article, versions, then the layout's notification/group/team reads
    with django_assert_max_num_queries(10):
        assert client.get(reverse("knowledge_base:article_history", args=[draft.pk])).status_code == 200


def test_restore_button(client_for, draft, agent):
    services.article_update(article=draft, by=agent, title="Changed")
    client_for(agent).post(reverse("knowledge_base:article_restore", args=[draft.pk, 1]))
    draft.refresh_from_db()
    assert draft.title == "Draft about coupons" and draft.version_number == 3


def test_restore_denied_to_requesters(client_for, published, requester):
    response = client_for(requester).post(reverse("knowledge_base:article_restore", args=[published.pk, 1]))
    assert response.status_code == 404


def test_suggest_returns_up_to_five_published_articles(client_for, agent, manager, requester):
    for n in range(7):
        make_published(agent, manager, title=f"邮件发送失败 {n}")
    make_article(agent, title="邮件发送失败 draft")
    response = client_for(requester).get(reverse("knowledge_base:suggest"), {"title": "邮件发送失败了怎么办"})
    html = response.content.decode()
    assert html.count('class="list-group-item d-flex align-items-center gap-2 kb-suggestion"') == 5
    assert "draft" not in html


def test_suggest_for_an_empty_title_is_empty(client_for, published, requester):
    response = client_for(requester).get(reverse("knowledge_base:suggest"), {"title": " "})
    assert response.status_code == 200 and "kb-suggestion" not in response.content.decode()


def test_suggest_needs_login(client):
    assert client.get(reverse("knowledge_base:suggest"), {"title": "x"}).status_code == 302


def test_suggest_query_count(client_for, agent, manager, requester, django_assert_max_num_queries):
    for n in range(5):
        make_published(agent, manager, title=f"标签 {n}")
    client = client_for(requester)
    with django_assert_max_num_queries(8):
        assert (
            "kb-suggestion"
            in client.get(reverse("knowledge_base:suggest"), {"title": "标签"}).content.decode()
        )


def test_this_solved_it_from_a_suggestion_records_a_deflection(client_for, published, requester):
    url = reverse("knowledge_base:deflect", args=[published.pk]) + "?q=标签"
    response = client_for(requester).post(url, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == reverse("knowledge_base:thanks", args=[published.pk])
    row = Deflection.objects.get()
    assert (row.user, row.query, row.source) == (requester, "标签", "suggestion")


def test_this_solved_my_problem_on_the_article_page(client_for, published, requester):
    client = client_for(requester)
    html = client.get(published.get_absolute_url(), {"from": "suggest", "q": "标签"}).content.decode()
    assert 'id="kb-solved"' in html
    response = client.post(
        reverse("knowledge_base:deflect", args=[published.pk]), {"q": "标签", "source": "article"}
    )
    assert response.status_code == 302
    assert Deflection.objects.get().source == "article"
    assert 'id="kb-thanks"' in client.get(response.url).content.decode()


def test_no_solved_button_without_a_suggestion(client_for, published, requester):
    assert 'id="kb-solved"' not in client_for(requester).get(published.get_absolute_url()).content.decode()


def test_deflection_on_a_draft_is_404(client_for, draft, requester):
    response = client_for(requester).post(reverse("knowledge_base:deflect", args=[draft.pk]))
    assert response.status_code == 404 and not Deflection.objects.exists()


def test_stale_list_for_the_owner(client_for, published, agent):
    Article.objects.filter(pk=published.pk).update(reviewed_at=timezone.now() - timedelta(days=200))
    html = client_for(agent).get(reverse("knowledge_base:stale")).content.decode()
    assert published.title in html


def test_stale_list_excludes_other_owners(client_for, published, agent2):
    Article.objects.filter(pk=published.pk).update(reviewed_at=timezone.now() - timedelta(days=200))
    html = client_for(agent2).get(reverse("knowledge_base:stale")).content.decode()
    assert 'id="stale-table"' not in html and 'class="empty-state"' in html


def test_stale_list_denied_to_requesters(client_for, requester):
    assert client_for(requester).get(reverse("knowledge_base:stale")).status_code == 403


def test_stale_list_query_count(client_for, agent, manager, django_assert_max_num_queries):
    for n in range(5):
        make_published(agent, manager, title=f"Old {n}")
    Article.objects.update(reviewed_at=timezone.now() - timedelta(days=200))
    client = client_for(agent)
    # session, user, 2 × permissions, count, page, then the layout's notification/group/team reads
    with django_assert_max_num_queries(10):
        assert client.get(reverse("knowledge_base:stale")).status_code == 200


def test_anonymous_visitors_are_sent_to_login(client, published):
    for url in (
        reverse("knowledge_base:index"),
        published.get_absolute_url(),
        reverse("knowledge_base:stale"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url


def test_thanks_page_for_a_draft_is_404_for_requesters(client_for, draft, requester):
    assert client_for(requester).get(reverse("knowledge_base:thanks", args=[draft.pk])).status_code == 404


def test_staff_see_the_related_campaign_requesters_do_not(client_for, agent, manager, requester):
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
    services.article_submit(article=article, by=agent)
    services.article_publish(article=article, by=manager)
    assert campaign.name in client_for(agent).get(article.get_absolute_url()).content.decode()
    assert (
        'id="related-campaigns"' not in client_for(requester).get(article.get_absolute_url()).content.decode()
    )
