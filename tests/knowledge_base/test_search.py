"""Search acceptance: Chinese inside sentences, word order, mixed languages, visibility, ranking, stemming."""

import pytest

from knowledge_base.search import highlight_snippet
from knowledge_base.segmentation import tokenizer
from knowledge_base.selectors import ArticleFilters, article_search_for_user

pytestmark = pytest.mark.django_db


def _ids(user, q: str) -> list[int]:
    search = article_search_for_user(user=user, filters=ArticleFilters(q=q))
    return [a.pk for a in search.queryset]


def test_two_character_chinese_word_inside_a_title_is_found(search_corpus, requester):
    # Given the manual "CRM 客户标签配置指南" (no spaces around 标签)
    # When a requester searches for 标签
    ids = _ids(requester, "标签")
    # Then the manual is found
    assert search_corpus["tags"].pk in ids


def test_word_order_does_not_matter(search_corpus, requester):
    assert search_corpus["tags"].pk in _ids(requester, "配置 标签")
    assert search_corpus["tags"].pk in _ids(requester, "标签配置")


def test_mixed_chinese_and_english_query(search_corpus, requester):
    ids = _ids(requester, "CRM 标签")
    assert ids[0] == search_corpus["tags"].pk


def test_project_dictionary_term_is_one_word(search_corpus, requester):
    # 客单价 is in the marketing dictionary: the query matches the operations manual only
    assert list(tokenizer().cut("客单价", HMM=False)) == ["客单价"]
    assert _ids(requester, "客单价") == [search_corpus["private"].pk]


def test_requesters_see_only_published_articles(search_corpus, requester):
    assert search_corpus["draft"].pk not in _ids(requester, "dashboard")


def test_agents_also_find_drafts(search_corpus, agent):
    assert search_corpus["draft"].pk in _ids(agent, "dashboard")


def test_title_match_ranks_above_body_match(search_corpus, requester):
    ids = _ids(requester, "dashboard")
    assert ids.index(search_corpus["dashboard_title"].pk) < ids.index(search_corpus["dashboard_body"].pk)


def test_english_stemming_configure_finds_configuration(search_corpus, requester):
    assert search_corpus["config"].pk in _ids(requester, "configure")


def test_sentence_query_falls_back_to_any_word(search_corpus, requester):
    # A requester types a sentence; not every word is in the article
    search = article_search_for_user(user=requester, filters=ArticleFilters(q="邮件发不出去了怎么办"))
    assert search.mode == "any"
    assert [a.pk for a in search.queryset][0] == search_corpus["email"].pk


def test_typo_in_short_query_uses_trigram_fallback(search_corpus, requester):
    search = article_search_for_user(user=requester, filters=ArticleFilters(q="dashbord"))
    assert search.mode == "similar"
    assert search_corpus["dashboard_title"].pk in [a.pk for a in search.queryset]


def test_index_is_updated_on_save(search_corpus, requester):
    article = search_corpus["config"]
    article.title = "单点登录 SSO"
    article.save()
    assert article.pk in _ids(requester, "单点登录")


def test_snippet_highlights_stemmed_word_and_escapes_html(agent):
    from tests.knowledge_base.factories import make_article

    article = make_article(agent, title="x", body="<b>bold</b> the configuration & more")
    search = article_search_for_user(user=agent, filters=ArticleFilters(q="configure"))
    snippet = highlight_snippet(article, search.terms, search.stems)
    assert "<mark>configuration</mark>" in snippet
    assert "&lt;b&gt;bold&lt;/b&gt;" in snippet and "&amp;" in snippet


def test_snippet_highlights_chinese_word(search_corpus, requester):
    search = article_search_for_user(user=requester, filters=ArticleFilters(q="退信"))
    article = search.queryset[0]
    assert "<mark>退信</mark>" in search.snippet(article)
