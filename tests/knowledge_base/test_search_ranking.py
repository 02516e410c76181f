"""The ranked search path: title > summary > body, exact counts and pages, cached counts that follow
every write, cheap snippets that match the full-text ones, and a bounded number of queries."""

import pytest

from knowledge_base.models import Article
from knowledge_base.search import RankedResults, highlight_snippet, plain_text
from knowledge_base.selectors import ArticleFilters, article_search_for_user
from knowledge_base.services import article_archive
from tests.knowledge_base.factories import make_article, make_published

pytestmark = pytest.mark.django_db
URL = "/api/v1/kb/articles/"


@pytest.fixture
def tiers(agent, manager):
    """One word (webhook) in the title of one article, only in the summary of another, only in the
    body of a third; created body first so that neither age nor id puts them in the right order."""
    body = make_published(
        agent, manager, title="Delivery settings", summary="Sender domains", body="Add a webhook for bounces."
    )
    summary = make_published(
        agent, manager, title="Bounce handling", summary="Register a webhook", body="Open the settings."
    )
    title = make_published(
        agent, manager, title="Webhook reference", summary="Events we send", body="Open the settings."
    )
    return {"title": title, "summary": summary, "body": body}


def test_title_match_ranks_above_summary_match_above_body_match(api_for, tiers, requester):
    data = api_for(requester).get(URL, {"q": "webhook"}).json()
    assert [r["id"] for r in data["results"]] == [tiers["title"].pk, tiers["summary"].pk, tiers["body"].pk]
    scores = [r["score"] for r in data["results"]]
    assert scores[0] > scores[1] > scores[2] > 0
    assert data["count"] == 3


def test_chinese_title_match_ranks_above_summary_above_body(agent, manager, requester):
    body = make_published(agent, manager, title="发送设置", summary="发件域名", body="为退信配置回调地址。")
    summary = make_published(agent, manager, title="退信处理", summary="配置回调地址", body="打开设置页面。")
    title = make_published(agent, manager, title="回调地址说明", summary="事件列表", body="打开设置页面。")
    search = article_search_for_user(user=requester, filters=ArticleFilters(q="回调"))
    assert [a.pk for a in search.queryset] == [title.pk, summary.pk, body.pk]


@pytest.fixture
def many(agent, manager):
    """25 published articles about coupons (title, summary or body), 3 drafts, 1 archived."""
    articles = []
    for n in range(25):
        where = n % 3
        articles.append(
            make_published(
                agent,
                manager,
                title=f"Coupon guide {n}" if where == 0 else f"Guide {n}",
                summary="Coupon rules" if where == 1 else "Rules",
                body="How a coupon is redeemed." if where == 2 else "How it works.",
            )
        )
    for n in range(3):
        make_article(agent, title=f"Coupon draft {n}")
    archived = make_published(agent, manager, title="Coupon archive")
    article_archive(article=archived, by=agent)
    return articles


def test_pages_hold_every_hit_once_in_rank_order_and_count_is_exact(api_for, many, requester):
    client = api_for(requester)
    pages = [client.get(URL, {"q": "coupon", "page": n, "page_size": 10}).json() for n in (1, 2, 3)]
    assert [p["count"] for p in pages] == [25, 25, 25]
    assert [len(p["results"]) for p in pages] == [10, 10, 5]
    ids = [r["id"] for p in pages for r in p["results"]]
    assert sorted(ids) == sorted(a.pk for a in many)
    # The pages are slices of one ranking: the same as the whole result list in one page.
    whole = client.get(URL, {"q": "coupon", "page_size": 100}).json()
    assert [r["id"] for r in whole["results"]] == ids
    scores = [r["score"] for r in whole["results"]]
    assert scores == sorted(scores, reverse=True)
    assert client.get(URL, {"q": "coupon", "page": 4, "page_size": 10}).status_code == 404


def test_staff_count_includes_drafts_not_archived(api_for, many, agent):
    assert api_for(agent).get(URL, {"q": "coupon"}).json()["count"] == 28


def test_ranked_results_behave_like_the_queryset(many, requester):
    search = article_search_for_user(user=requester, filters=ArticleFilters(q="coupon"))
    results = search.queryset
    assert isinstance(results, RankedResults)
    ranked = [a.pk for a in results]
    assert len(ranked) == 25 == results.count() == len(results)
    assert [a.pk for a in results[5:12]] == ranked[5:12]
    assert results[3].pk == ranked[3]
    assert results[30:40] == []
    with pytest.raises(IndexError):
        results[25]
    fresh = article_search_for_user(user=requester, filters=ArticleFilters(q="coupon")).queryset
    assert [a.pk for a in fresh[10:20]] == ranked[10:20]
    assert fresh[0].score >= fresh[1].score


def test_cached_count_follows_publish_archive_and_delete(api_for, tiers, agent, manager, requester):
    client = api_for(requester)
    assert client.get(URL, {"q": "webhook"}).json()["count"] == 3
    assert client.get(URL, {"q": "webhook"}).json()["count"] == 3  # now from the cache
    new = make_published(agent, manager, title="Webhook retries")
    data = client.get(URL, {"q": "webhook"}).json()
    assert data["count"] == 4 and new.pk in [r["id"] for r in data["results"]]
    article_archive(article=new, by=agent)
    assert client.get(URL, {"q": "webhook"}).json()["count"] == 3
    tiers["body"].delete()
    assert client.get(URL, {"q": "webhook"}).json()["count"] == 2


def test_cached_count_follows_an_edit_of_the_text(api_for, tiers, requester):
    client = api_for(requester)
    assert client.get(URL, {"q": "webhook"}).json()["count"] == 3
    article = tiers["body"]
    article.body = "Nothing about callbacks here."
    article.save(update_fields=["body"])
    assert client.get(URL, {"q": "webhook"}).json()["count"] == 2


def test_count_cache_is_per_audience(api_for, tiers, agent, requester):
    make_article(agent, title="Webhook draft")
    assert api_for(requester).get(URL, {"q": "webhook"}).json()["count"] == 3
    assert api_for(agent).get(URL, {"q": "webhook"}).json()["count"] == 4
    assert api_for(requester).get(URL, {"q": "webhook"}).json()["count"] == 3


def test_cached_mode_falls_back_to_any_word_again(search_corpus, requester):
    first = article_search_for_user(user=requester, filters=ArticleFilters(q="邮件发不出去了怎么办"))
    first_ids = [a.pk for a in first.queryset]
    assert first.queryset.count() == len(first_ids)  # what the paginator asks: kept with the mode
    again = article_search_for_user(user=requester, filters=ArticleFilters(q="邮件发不出去了怎么办"))
    assert (first.mode, again.mode) == ("any", "any")
    assert [a.pk for a in again.queryset] == first_ids
    assert again.count == len(first_ids)


def test_cached_typo_fallback(search_corpus, requester):
    for _ in range(2):
        search = article_search_for_user(user=requester, filters=ArticleFilters(q="dashbord"))
        assert search.mode == "similar"
        assert search_corpus["dashboard_title"].pk in [a.pk for a in search.queryset]


def test_repeated_search_is_one_ranking_query(client_for, many, requester, django_assert_num_queries):
    client = client_for(requester)  # signed in with a session, as in a browser
    assert client.get(URL, {"q": "coupon"}).json()["count"] == 25  # counts and caches the count
    # session, user and the ranking query that also reads the page: no count query, and the
    # permissions come from the access cache (accounts.backends) filled by the first request
    with django_assert_num_queries(3):
        assert client.get(URL, {"q": "coupon"}).json()["count"] == 25


def test_search_query_count_does_not_grow_with_hits(api_for, many, requester, django_assert_max_num_queries):
    # Multi-word query, first time: user + permissions, count all words, count any word, rank.
    with django_assert_max_num_queries(6):
        data = api_for(requester).get(URL, {"q": "coupon voucher"}).json()
    assert data["count"] == 25 and len(data["results"]) == 20


def _article(body: str, summary: str = "") -> Article:
    return Article(title="t", summary=summary, body=body)


def test_snippet_of_a_long_body_is_cut_around_the_first_match():
    body = "Intro paragraph. " * 200 + "Then **configure** the webhook. " + "More text. " * 200
    snippet = highlight_snippet(_article(body), ["configure"], ["configur"])
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "<mark>configure</mark>" in snippet and "**" not in snippet


def test_snippet_skips_a_match_inside_a_link_target():
    body = "See [the guide](https://example.com/configure). Later: configuration of the provider."
    snippet = highlight_snippet(_article(body), ["configure"], ["configur"])
    assert "<mark>configuration</mark>" in snippet
    assert "example.com" not in snippet


def test_snippet_finds_a_word_in_underscore_emphasis():
    body = "x " * 300 + "Please _configure_ it."
    snippet = highlight_snippet(_article(body), ["configure"], ["configur"])
    assert "<mark>configure</mark>" in snippet


def test_snippet_falls_back_to_summary_then_text():
    assert "<mark>webhook</mark>" in highlight_snippet(_article("no match", "A webhook"), ["webhook"], [])
    assert highlight_snippet(_article("plain **body**"), ["webhook"], []) == plain_text("plain **body**")
