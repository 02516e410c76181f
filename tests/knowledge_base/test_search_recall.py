"""Recall on the project's own test set (marketing_corpus.json: hand-written Chinese marketing
articles, 270 sentences): every term that occurs in an article's title or body finds that article.
The reference is independent of the search code: plain substring tests in Python."""

import json
import re
from pathlib import Path

import jieba
import pytest

from knowledge_base.search import STOP_WORDS
from knowledge_base.selectors import ArticleFilters, article_search_for_user
from tests.knowledge_base.factories import make_published

pytestmark = pytest.mark.django_db
CORPUS = json.loads((Path(__file__).with_name("marketing_corpus.json")).read_text(encoding="utf-8"))
CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture
def corpus(agent, manager) -> dict[int, str]:
    """The test set, published: article id → its title and body (what the reference searches)."""
    texts = {}
    for row in CORPUS["articles"]:
        article = make_published(agent, manager, title=row["title"], body=row["body"], language="zh-hans")
        texts[article.pk] = f"{row['title']}\n{row['body']}"
    return texts


def _found(user, q: str) -> set[int]:
    return {a.pk for a in article_search_for_user(user=user, filters=ArticleFilters(q=q)).queryset}


def _containing(corpus: dict[int, str], term: str) -> set[int]:
    return {pk for pk, text in corpus.items() if term.lower() in text.lower()}


def test_the_test_set_is_big_enough_and_its_terms_are_out_of_jiebas_dictionary():
    sentences = sum(len(re.findall(r"[。？！.?!]", a["body"])) for a in CORPUS["articles"])
    assert sentences >= 200
    plain = jieba.Tokenizer()  # jieba's own dictionary, not the project's
    outside = [
        t for t in CORPUS["oov_terms"] if list(plain.cut(t, HMM=False)) != [t] or plain.FREQ.get(t, 0) < 10
    ]
    assert len(outside) == len(CORPUS["oov_terms"]) >= 50


def test_every_marketing_term_finds_every_article_that_contains_it(corpus, requester):
    missed, extra = {}, {}
    for term in CORPUS["oov_terms"] + CORPUS["dictionary_terms"]:
        expected = _containing(corpus, term)
        assert expected, f"{term} occurs in no article of the test set"
        found = _found(requester, term)
        if expected - found:
            missed[term] = len(expected - found)
        if CJK.search(term) and found - expected:
            extra[term] = len(found - expected)  # a Chinese term is matched as written, parts never
    assert missed == {}  # recall 100 %
    assert extra == {}


def test_every_word_of_the_test_set_finds_every_article_that_contains_it(corpus, requester):
    # The words of another segmentation (jieba's own dictionary, HMM on) than the index's
    plain = jieba.Tokenizer()
    words = {
        w
        for text in corpus.values()
        for w in plain.cut(text)
        if len(w) >= 2 and CJK.search(w) and w not in STOP_WORDS
    }
    assert len(words) > 500
    missed = {w: sorted(_containing(corpus, w) - _found(requester, w)) for w in sorted(words)}
    assert {w: ids for w, ids in missed.items() if ids} == {}
