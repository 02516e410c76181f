"""The knowledge-base API contract: paths, JSON names, permissions, ranking, query counts."""

import pytest

from knowledge_base.models import Article
from tests.knowledge_base.factories import make_article

pytestmark = pytest.mark.django_db
URL = "/api/v1/kb/articles/"


def test_agent_creates_a_draft(api_for, agent):
    response = api_for(agent).post(
        URL, {"title": "私域运营 FAQ", "summary": "s", "body": "b", "kind": "faq", "language": "zh-hans"}
    )
    assert response.status_code == 201
    article = Article.objects.get()
    assert response.json() == {"id": article.pk, "status": "draft"}


def test_create_rejects_an_unknown_kind_with_the_error_shape(api_for, agent):
    response = api_for(agent).post(URL, {"title": "x", "kind": "poem", "language": "en"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "kind"


def test_requester_may_not_create(api_for, requester):
    response = api_for(requester).post(URL, {"title": "x", "kind": "faq", "language": "en"})
    assert response.status_code == 403


def test_anonymous_is_refused(api_for):
    assert api_for(None).get(URL).status_code in (401, 403)


def test_patch_edits_a_draft_and_keeps_a_version(api_for, draft, agent):
    etag = api_for(agent).get(f"{URL}{draft.pk}/")["ETag"]
    response = api_for(agent).patch(f"{URL}{draft.pk}/", {"title": "New title"}, HTTP_IF_MATCH=etag)
    assert response.status_code == 200 and response.json()["version"] == 2


def test_patch_of_a_published_article_conflicts(api_for, published, agent):
    etag = api_for(agent).get(f"{URL}{published.pk}/")["ETag"]
    response = api_for(agent).patch(f"{URL}{published.pk}/", {"title": "New title"}, HTTP_IF_MATCH=etag)
    assert response.status_code == 409


def test_requester_cannot_see_or_patch_a_draft(api_for, draft, requester):
    assert api_for(requester).get(f"{URL}{draft.pk}/").status_code == 404
    assert (
        api_for(requester).patch(f"{URL}{draft.pk}/", {"title": "x"}, HTTP_IF_MATCH='"1"').status_code == 404
    )


def test_requester_reads_a_published_article(api_for, published, requester):
    response = api_for(requester).get(f"{URL}{published.pk}/")
    assert response.status_code == 200 and response.json()["title"] == "CRM 客户标签配置指南"


def test_submit_then_publish(api_for, draft, agent, manager):
    assert api_for(agent).post(f"{URL}{draft.pk}/submit/").json() == {"id": draft.pk, "status": "in_review"}
    response = api_for(manager).post(f"{URL}{draft.pk}/publish/")
    assert response.status_code == 200 and response.json()["status"] == "published"


def test_author_cannot_publish_own_article(api_for, draft, agent):
    api_for(agent).post(f"{URL}{draft.pk}/submit/")
    assert api_for(agent).post(f"{URL}{draft.pk}/publish/").status_code == 403


def test_publish_of_a_draft_conflicts(api_for, draft, manager):
    assert api_for(manager).post(f"{URL}{draft.pk}/publish/").status_code == 409


def test_requester_cannot_submit(api_for, published, requester):
    assert api_for(requester).post(f"{URL}{published.pk}/submit/").status_code == 403


def test_search_returns_ranked_results_with_snippets(api_for, search_corpus, requester):
    data = api_for(requester).get(URL, {"q": "dashboard"}).json()
    assert data["count"] == 2
    first = data["results"][0]
    assert set(first) >= {"id", "title", "snippet", "score"}
    assert first["id"] == search_corpus["dashboard_title"].pk
    assert first["score"] > data["results"][1]["score"]
    assert "<mark>" in data["results"][1]["snippet"]


def test_search_in_chinese_finds_word_inside_title(api_for, search_corpus, requester):
    data = api_for(requester).get(URL, {"q": "标签"}).json()
    assert search_corpus["tags"].pk in [r["id"] for r in data["results"]]


def test_search_is_published_only_for_requesters(api_for, search_corpus, requester):
    ids = [r["id"] for r in api_for(requester).get(URL, {"q": "configuration"}).json()["results"]]
    assert search_corpus["draft"].pk not in ids and search_corpus["config"].pk in ids


def test_search_query_count_is_bounded(api_for, search_corpus, requester, django_assert_max_num_queries):
    client = api_for(requester)
    # auth (user + groups/perms), stems, exists() for the fallback, count, page
    with django_assert_max_num_queries(8):
        assert client.get(URL, {"q": "标签"}).status_code == 200


def test_list_query_count_does_not_grow_with_articles(api_for, agent, manager, django_assert_max_num_queries):
    for n in range(12):
        make_article(agent, title=f"Article {n}")
    with django_assert_max_num_queries(6):
        assert api_for(agent).get(URL).json()["count"] == 12


def test_versions_listed_for_staff(api_for, draft, agent):
    etag = api_for(agent).get(f"{URL}{draft.pk}/")["ETag"]
    api_for(agent).patch(f"{URL}{draft.pk}/", {"body": "changed"}, HTTP_IF_MATCH=etag)
    data = api_for(agent).get(f"{URL}{draft.pk}/versions/").json()
    assert [v["number"] for v in data["results"]] == [2, 1]


def test_versions_hidden_from_requesters(api_for, published, requester):
    assert api_for(requester).get(f"{URL}{published.pk}/versions/").status_code == 404


def test_versions_query_count(api_for, draft, agent, django_assert_max_num_queries):
    etag = api_for(agent).get(f"{URL}{draft.pk}/")["ETag"]
    for n in range(5):
        etag = api_for(agent).patch(f"{URL}{draft.pk}/", {"body": f"v{n}"}, HTTP_IF_MATCH=etag)["ETag"]
    with django_assert_max_num_queries(6):
        assert api_for(agent).get(f"{URL}{draft.pk}/versions/").json()["count"] == 6
