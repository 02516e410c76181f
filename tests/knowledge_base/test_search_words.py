"""Issue 17, knowledge-base search: out-of-dictionary marketing words are found, a query word is
never silently dropped, whole words beat their parts, phrase matches rank, and counts follow bulk
deletes and updates."""

import pytest

from knowledge_base.models import Article
from knowledge_base.search import query_words
from knowledge_base.segmentation import tokenizer
from knowledge_base.selectors import ArticleFilters, article_search_for_user
from tests.knowledge_base.factories import make_published

pytestmark = pytest.mark.django_db
URL = "/api/v1/kb/articles/"


def _ids(user, q: str) -> list[int]:
    search = article_search_for_user(user=user, filters=ArticleFilters(q=q))
    return [a.pk for a in search.queryset]


@pytest.fixture
def publish(agent, manager):
    def _publish(title: str, body: str = "", summary: str = "") -> Article:
        return make_published(agent, manager, title=title, summary=summary, body=body, language="zh-hans")

    return _publish


@pytest.fixture
def growth(publish):
    """复购 in 2 articles, 获客 in 4 (once as 获客渠道, once as 获客成本), 成本 and 渠道 alone elsewhere."""
    return {
        "repurchase_1": publish("老客运营手册", "老客的复购周期大约是45天，要提前三天提醒。"),
        "repurchase_2": publish("会员日复盘", "会员日当天带来的复购占全月三成。"),
        "channels": publish("获客渠道盘点", "目前的获客渠道包括信息流、搜索广告和老带新。"),
        "cost": publish("降低获客成本的方法", "老带新的获客成本只有信息流买量的三分之一。"),
        "apart": publish("线索质量", "提升获客效率的同时，也要控制整体成本和渠道数量。"),
        "acquisition": publish("新客首单", "首单优惠能帮助获客，但要防止羊毛党。"),
        "cost_only": publish("预算与成本", "本季度的投放成本上涨了两成。"),
        "channel_only": publish("渠道追踪参数", "每个渠道都要有独立的追踪参数。"),
    }


def test_out_of_dictionary_word_in_two_articles_finds_both(growth, requester):
    # Given 复购 in the bodies of two articles (jieba's own dictionary does not know the word)
    # When a requester searches for it
    ids = _ids(requester, "复购")
    # Then both articles are found
    assert sorted(ids) == sorted([growth["repurchase_1"].pk, growth["repurchase_2"].pk])


def test_out_of_dictionary_word_in_four_articles_finds_all_four(growth, requester, api_for):
    data = api_for(requester).get(URL, {"q": "获客"}).json()
    expected = [growth[k].pk for k in ("channels", "cost", "apart", "acquisition")]
    assert data["count"] == 4
    assert sorted(r["id"] for r in data["results"]) == sorted(expected)


def test_every_query_word_counts_not_only_the_known_one(growth, requester):
    # 获客渠道: searching only 渠道 (获客 dropped) would also return "渠道追踪参数"
    ids = _ids(requester, "获客渠道")
    assert ids == [growth["channels"].pk]


def test_whole_word_hits_leave_out_articles_with_only_its_parts(growth, requester):
    # 获客成本 is in one article; others hold 成本 alone, or 获客 and 成本 apart
    assert _ids(requester, "获客成本") == [growth["cost"].pk]


def test_parts_of_a_word_match_only_when_no_article_holds_the_whole_word(growth, requester):
    # Given no article with 获客成本, one with 获客 ... 成本 apart, one with 成本 only
    growth["cost"].delete()
    # Then the parts match together, never 成本 alone
    search = article_search_for_user(user=requester, filters=ArticleFilters(q="获客成本"))
    assert search.mode == "parts"
    assert [a.pk for a in search.queryset] == [growth["apart"].pk]


def test_more_phrase_matches_rank_higher(publish, requester):
    # Given one article with 营销自动化 once (and its parts 营销, 自动化 apart, many times) and one
    # with the phrase nine times
    once = publish(
        "营销活动与自动化工具",
        "营销自动化平台上线后，营销团队把营销活动的报名、营销短信和营销邮件都交给自动化工具；"
        "自动化流程、自动化报表和自动化审批也在计划中。营销预算由营销经理负责。",
    )
    nine = publish(
        "自动化运营周报",
        "。".join([f"营销自动化节点第{n}个的转化率" for n in range(9)]) + "。",
    )
    # When a requester searches for the phrase
    ids = _ids(requester, "营销自动化")
    # Then the article with more phrase matches ranks first
    assert ids == [nine.pk, once.pk]


def test_title_phrase_match_ranks_above_body_phrase_match(publish, requester):
    body = publish("周报", "本周上线了营销自动化的欢迎旅程。")
    title = publish("营销自动化入门", "先定义触发条件，再设计节点。")
    assert _ids(requester, "营销自动化") == [title.pk, body.pk]


def test_mixed_chinese_and_english_query(publish, requester):
    both = publish("私域 GMV 提升复盘", "本月 GMV 提升 23%，主要来自老客。")
    gmv_only = publish("GMV 口径说明", "GMV 含未支付订单。")
    publish("转化率提升", "落地页改版后转化率提升。")
    assert _ids(requester, "GMV 提升") == [both.pk]
    assert gmv_only.pk in _ids(requester, "gmv")


def test_count_follows_a_queryset_delete(growth, requester, api_for):
    client = api_for(requester)
    assert client.get(URL, {"q": "成本"}).json()["count"] == 3
    assert client.get(URL, {"q": "成本"}).json()["count"] == 3  # cached now
    # When one article is deleted through a queryset (no Model.delete())
    Article.objects.filter(pk=growth["cost"].pk).delete()
    # Then the next search counts again
    data = client.get(URL, {"q": "成本"}).json()
    assert data["count"] == 2 and len(data["results"]) == 2


def test_count_follows_a_bulk_delete(growth, requester, api_for):
    client = api_for(requester)
    assert client.get(URL, {"q": "渠道"}).json()["count"] == 3
    Article.objects.filter(pk__in=[growth["channels"].pk, growth["apart"].pk]).delete()
    assert client.get(URL, {"q": "渠道"}).json()["count"] == 1


def test_count_follows_a_queryset_update_of_the_status(growth, requester, api_for):
    client = api_for(requester)
    assert client.get(URL, {"q": "成本"}).json()["count"] == 3
    Article.objects.filter(pk=growth["cost_only"].pk).update(status=Article.Status.ARCHIVED)
    assert client.get(URL, {"q": "成本"}).json()["count"] == 2


def test_marketing_words_are_single_query_words():
    # The domain dictionary is loaded: 复购, 获客, 触达, 达人, 数智化 are words, not characters
    for word in ("复购", "获客", "触达", "达人", "数智化", "私域", "种草", "GMV"):
        assert query_words(word) == [word.lower()]
    assert tokenizer() is tokenizer()  # loaded once


def test_a_split_query_keeps_every_word():
    assert query_words("获客渠道") == ["获客", "渠道"]
    assert query_words("数智化转型") == ["数智化", "转型"]


def test_results_page_says_when_it_shows_parts_only(growth, requester, client_for):
    growth["cost"].delete()
    response = client_for(requester).get("/kb/", {"q": "获客成本"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "showing articles with all of its parts" in body or "显示包含其全部组成部分的文章" in body
    assert "<mark>获客</mark>" in body and "<mark>成本</mark>" in body


def test_phrase_results_highlight_the_whole_word(growth, requester, client_for):
    body = client_for(requester).get("/kb/", {"q": "获客成本"}).content.decode()
    assert "<mark>获客成本</mark>" in body and "<mark>成本</mark>" not in body


def test_query_count_does_not_grow_with_chinese_hits(
    publish, requester, api_for, django_assert_max_num_queries
):
    for n in range(25):
        publish(f"复盘{n}", f"第{n}期营销自动化旅程的复购转化。")
    # user + permissions, count of the first level, ranking with the page
    with django_assert_max_num_queries(5):
        data = api_for(requester).get(URL, {"q": "营销自动化 复购"}).json()
    assert data["count"] == 25 and len(data["results"]) == 20


def test_an_article_written_in_bulk_is_found_and_counted(growth, requester, agent, api_for):
    client = api_for(requester)
    assert client.get(URL, {"q": "复购"}).json()["count"] == 2
    # Given an article inserted without save() (no segmentation in Python): the database computes
    # the character pairs, and bulk_create starts a new generation of cached counts
    (bulk,) = Article.objects.bulk_create(
        [
            Article(
                title="导入的文章", body="提升复购的三个方法。", status=Article.Status.PUBLISHED, owner=agent
            )
        ]
    )
    data = client.get(URL, {"q": "复购"}).json()
    assert data["count"] == 3 and bulk.pk in [r["id"] for r in data["results"]]


def test_count_follows_the_deletion_of_a_category(growth, requester, api_for):
    from tests.knowledge_base.factories import make_category

    category = make_category()
    article = growth["cost_only"]
    article.category = category
    article.save()
    client, params = api_for(requester), {"q": "成本", "category": category.pk}
    assert client.get(URL, params).json()["count"] == 1
    category.delete()  # its articles lose the category in SQL (SET_NULL), not through save()
    assert client.get(URL, params).json()["count"] == 0
