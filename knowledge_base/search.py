"""Article search: jieba-segmented query → Postgres tsquery (`simple` + stemmed `english`), ranked
title > summary > body, with highlighted snippets and a pg_trgm fallback for short, mistyped queries."""

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache, reduce

from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import F, FloatField, QuerySet, Value
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from knowledge_base.models import Article
from knowledge_base.segmentation import CJK, tokenizer

log = logging.getLogger(__name__)

# Words that carry no meaning in a query (a requester types sentences, not keywords).
STOP_WORDS = frozenset(
    "怎么办 怎么 如何 为什么 什么 我们 你们 一个 一下 这个 那个 可以 请问 问题 "
    "a an and are as at be by can do does for from how i in is it my of on or our the to "
    "what when where why with you your we not no".split()
)
SHORT_QUERY_CHARS = 20
SNIPPET_CHARS = 160
_MARKDOWN_NOISE = re.compile(r"!\[[^\]]*\]\([^)]*\)|\]\([^)]*\)|[#*_`|\[\]~]+|-{3,}|^\s*>+", re.MULTILINE)
_SPACES = re.compile(r"\s+")


@dataclass
class ArticleSearch:
    """A ranked search: the queryset (annotated with `score`) and what to highlight."""

    query: str
    queryset: QuerySet[Article]
    terms: list[str] = field(default_factory=list)
    stems: list[str] = field(default_factory=list)
    mode: str = "all"
    count: int | None = None  # known already (then the paginator does not count again)

    def snippet(self, article: Article) -> SafeString:
        return highlight_snippet(article, self.terms, self.stems)

    def paginator(self, per_page: int) -> Paginator:
        """A paginator over the ranked results that reuses a count made while choosing the mode."""
        paginator = Paginator(self.queryset, per_page)
        if self.count is not None:
            paginator.__dict__["count"] = self.count  # pre-fills the cached_property
        return paginator


def query_words(text: str) -> list[str]:
    """The meaningful words of a query (jieba's precise mode, stop words and lone CJK characters dropped)."""
    words: dict[str, None] = {}
    raw = [w.strip().lower() for w in tokenizer().cut(text[:200], HMM=False)]
    raw = [w for w in raw if w and re.search(r"\w", w)]
    for word in raw:
        if word in STOP_WORDS:
            continue
        if len(word) == 1 and CJK.match(word) and len(raw) > 1:
            continue
        words.setdefault(word, None)
    return list(words)


def _word_query(word: str) -> SearchQuery:
    if CJK.search(word):
        exact = SearchQuery(word, config="simple", search_type="plain")
        parts = [p for p in tokenizer().cut_for_search(word) if p != word and len(p) >= 2]
        if parts:
            # A long word also matches when the document has its parts (segmentation differs by context).
            parts_query = reduce(lambda a, b: a & b, (SearchQuery(p, config="simple") for p in parts))
            return exact | parts_query
        return exact
    return SearchQuery(word, config="english", search_type="plain") | SearchQuery(
        word, config="simple", search_type="plain"
    )


def build_query(words: list[str], *, match_all: bool) -> SearchQuery | None:
    """Combine the words: all of them must match (match_all) or any of them."""
    if not words:
        return None
    queries = [_word_query(w) for w in words]
    return reduce((lambda a, b: a & b) if match_all else (lambda a, b: a | b), queries)


def english_stems(words: list[str]) -> list[str]:
    """Postgres' own English stems of the Latin words (for highlighting configure → configuration)."""
    latin = tuple(sorted({w for w in words if not CJK.search(w)}))
    return list(_stems(latin)) if latin else []


@lru_cache(maxsize=4096)
def _stems(latin: tuple[str, ...]) -> tuple[str, ...]:
    # A word's stem never changes: ask Postgres once per process.
    with connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(to_tsvector('english', %s))", [" ".join(latin)])
        row = cursor.fetchone()
    return tuple(sorted(set(row[0] or []), key=len, reverse=True))


def search_articles(base: QuerySet[Article], text: str, *, prefer_any: bool = False) -> ArticleSearch:
    """Rank `base` against the text: all words first, then any word, then trigram similarity of titles."""
    text = (text or "").strip()
    words = query_words(text)
    terms = sorted(
        {t for w in words for t in ([w, *tokenizer().cut_for_search(w)] if CJK.search(w) else [w])},
        key=len,
        reverse=True,
    )
    stems = english_stems(words)
    modes = (False,) if prefer_any else (True, False)
    if len(words) == 1:
        modes = (True,)
    for match_all in modes:
        query = build_query(words, match_all=match_all)
        if query is None:
            break
        qs = (
            base.filter(search_vector=query)
            .annotate(score=SearchRank(F("search_vector"), query))
            .order_by("-score", "-published_at", "-id")
        )
        # Only a one-word query falls through to the trigram (typo) fallback, so only then is
        # emptiness checked after the last full-text mode.
        may_fall_back = match_all != modes[-1] or (len(words) == 1 and len(text) <= SHORT_QUERY_CHARS)
        count = None
        if may_fall_back:
            # count(), not exists(): with LIMIT 1 the planner prefers a sequential scan that reads
            # every vector when nothing matches; the count goes through the GIN index and is reused
            # by the paginator.
            count = qs.count()
            if count == 0:
                continue
        return ArticleSearch(text, qs, terms, stems, "all" if match_all else "any", count)
    if text and len(words) <= 1 and len(text) <= SHORT_QUERY_CHARS:
        # `<%` (word similarity ≥ pg_trgm's threshold, 0.6) is answered by the title's trigram index.
        qs = (
            base.filter(title__trigram_word_similar=text)
            .annotate(score=TrigramWordSimilarity(text, "title"))
            .order_by("-score", "-id")
        )
        return ArticleSearch(text, qs, [text], stems, "similar")
    return ArticleSearch(
        text, base.none().annotate(score=Value(0.0, output_field=FloatField())), terms, stems
    )


def plain_text(markdown: str) -> str:
    """Markdown reduced to readable text for snippets."""
    return _SPACES.sub(" ", _MARKDOWN_NOISE.sub(" ", markdown or "")).strip()


def _pattern(terms: list[str], stems: list[str]) -> re.Pattern | None:
    alternatives = [re.escape(t) for t in terms if CJK.search(t)]
    latin = {t for t in terms if not CJK.search(t)} | set(stems)
    alternatives += [rf"\b{re.escape(s)}\w*" for s in sorted(latin, key=len, reverse=True) if s]
    if not alternatives:
        return None
    return re.compile("|".join(alternatives), re.IGNORECASE)


def highlight(text: str, pattern: re.Pattern | None) -> SafeString:
    """HTML-escape the text and wrap every match in <mark>."""
    if pattern is None:
        return escape(text)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[last : match.start()]))
        out.append(f"<mark>{escape(match.group(0))}</mark>")
        last = match.end()
    out.append(escape(text[last:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece above is escaped


def highlight_snippet(article: Article, terms: list[str], stems: list[str]) -> SafeString:
    """A short passage around the first match in the body (else the summary), matches marked."""
    pattern = _pattern(terms, stems)
    for source in (plain_text(article.body), article.summary):
        match = pattern.search(source) if pattern else None
        if match:
            start = max(0, match.start() - SNIPPET_CHARS // 4)
            piece = source[start : start + SNIPPET_CHARS]
            prefix = "…" if start > 0 else ""
            suffix = "…" if start + SNIPPET_CHARS < len(source) else ""
            return mark_safe(prefix + highlight(piece, pattern) + suffix)  # noqa: S308 - escaped by highlight
    fallback = article.summary or plain_text(article.body)
    return escape(fallback[:SNIPPET_CHARS] + ("…" if len(fallback) > SNIPPET_CHARS else ""))


def highlight_title(title: str, terms: list[str], stems: list[str]) -> SafeString:
    return highlight(title, _pattern(terms, stems))
