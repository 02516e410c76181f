"""Article search: jieba-segmented query → Postgres tsquery (`simple` + stemmed `english`), ranked
title > summary > body, with highlighted snippets and a pg_trgm fallback for short, mistyped queries."""

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.contrib.postgres.search import SearchQueryField, TrigramWordSimilarity
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import BooleanField, Expression, F, FloatField, Func, Q, QuerySet, Value
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from knowledge_base.models import Article
from knowledge_base.search_cache import CountCache
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


class RankedResults:
    """The ranked hits of a search, read a slice at a time (what a page shows).

    Ranking runs over every match in a narrow subquery (id and score only: no wide rows carried
    through the sort, no joins); only the slice's rows are then read whole, ranked again (20
    rows) for their score. Behaves like the queryset it replaces for the paginator, slicing,
    indexing, iteration and count().
    """

    ordered = True  # for Django's Paginator

    def __init__(
        self,
        base: QuerySet[Article],
        condition: Q,
        score: Expression,
        ordering: tuple[str, ...],
        *,
        count: int | None = None,
        on_count: Any = None,
    ) -> None:
        self.base = base
        self.condition = condition
        self.score = score
        self.ordering = ordering
        self._count = count
        self._on_count = on_count
        self._all: list[Article] | None = None

    def matches(self) -> QuerySet[Article]:
        return self.base.filter(self.condition)

    def count(self) -> int:
        if self._count is None:
            self._count = len(self._all) if self._all is not None else self.matches().count()
            if self._on_count is not None:
                self._on_count(self._count)
        return self._count

    def __len__(self) -> int:
        return self.count()

    def _slice(self, start: int, stop: int | None) -> list[Article]:
        if (stop is not None and stop <= start) or self._count == 0:
            return []
        ranked = self.matches().annotate(score=self.score).order_by("-score", *self.ordering).values("pk")
        top = ranked[start:stop]
        rows = self.base.filter(pk__in=top).annotate(score=self.score).order_by("-score", *self.ordering)
        return list(rows)

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            if item.step is not None or (item.start or 0) < 0 or (item.stop is not None and item.stop < 0):
                raise ValueError("Only forward slices of search results are supported.")
            if self._all is not None:
                return self._all[item]
            return self._slice(item.start or 0, item.stop)
        if item < 0:
            raise IndexError("Negative indexing is not supported.")
        rows = self._all[item : item + 1] if self._all is not None else self._slice(item, item + 1)
        if not rows:
            raise IndexError("search result index out of range")
        return rows[0]

    def __iter__(self) -> Iterator[Article]:
        if self._all is None:
            self._all = self._slice(0, None)
        return iter(self._all)

    def __bool__(self) -> bool:
        return self.count() > 0


@dataclass
class ArticleSearch:
    """A ranked search: the queryset (annotated with `score`) and what to highlight."""

    query: str
    queryset: "QuerySet[Article] | RankedResults"
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


class TsQuery(Expression):
    """A tsquery written once as SQL with the words as parameters.

    Cheap for Django to copy and resolve (a leaf, not a tree of SearchQuery expressions that is
    copied again for every use: filter, ranking, and the page query around the ranking).
    """

    def __init__(self, sql: str, params: tuple[str, ...]) -> None:
        super().__init__(output_field=SearchQueryField())
        self.sql, self.params = sql, tuple(params)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[str]]:
        return self.sql, list(self.params)

    @classmethod
    def plain(cls, config: str, word: str) -> "TsQuery":
        if config not in ("simple", "english"):
            raise ValueError(config)
        return cls(f"plainto_tsquery('{config}'::regconfig, %s)", (word,))

    @classmethod
    def combine(cls, queries: list["TsQuery"], operator: str) -> "TsQuery":
        if len(queries) == 1:
            return queries[0]
        return cls(
            "(" + f" {operator} ".join(q.sql for q in queries) + ")",
            tuple(p for q in queries for p in q.params),
        )


class Matches(Func):
    """`vector @@ query` as a condition for filter() (answered by the GIN index)."""

    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()


class Rank(Func):
    """ts_rank(vector, query) with the default weights: A (title) 1.0, B (summary) 0.4, C (body) 0.2."""

    function = "ts_rank"
    output_field = FloatField()


def _word_query(word: str) -> TsQuery:
    if CJK.search(word):
        exact = TsQuery.plain("simple", word)
        parts = [p for p in tokenizer().cut_for_search(word) if p != word and len(p) >= 2]
        if parts:
            # A long word also matches when the document has its parts (segmentation differs by context).
            parts_query = TsQuery.combine([TsQuery.plain("simple", p) for p in parts], "&&")
            return TsQuery.combine([exact, parts_query], "||")
        return exact
    return TsQuery.combine([TsQuery.plain("english", word), TsQuery.plain("simple", word)], "||")


def build_query(words: list[str], *, match_all: bool) -> TsQuery | None:
    """Combine the words: all of them must match (match_all) or any of them."""
    if not words:
        return None
    return TsQuery.combine([_word_query(w) for w in words], "&&" if match_all else "||")


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


def search_articles(
    base: QuerySet[Article], text: str, *, prefer_any: bool = False, cache_scope: str | None = None
) -> ArticleSearch:
    """Rank `base` against the text: all words first, then any word, then trigram similarity of titles.

    With `cache_scope` (who is asking and with which filters: the same scope must mean the same
    `base`), the mode reached and the number of hits are reused from the cache while no article
    changed, so a repeated query costs one ranking query.
    """
    text = (text or "").strip()
    words = query_words(text)
    terms = sorted(
        {t for w in words for t in ([w, *tokenizer().cut_for_search(w)] if CJK.search(w) else [w])},
        key=len,
        reverse=True,
    )
    stems = english_stems(words)
    cached = CountCache.load(cache_scope, text, prefer_any) if cache_scope is not None else None

    def remember(mode: str) -> Any:
        if cached is None:
            return None
        return lambda count: cached.store(mode, count)

    def full_text(match_all: bool, count: int | None, *, final: bool = True) -> ArticleSearch:
        query = build_query(words, match_all=match_all)
        mode = "all" if match_all else "any"
        results = RankedResults(
            base,
            Q(Matches(F("search_vector"), query)),
            Rank(F("search_vector"), query),
            ("-published_at", "-id"),
            count=count,
            on_count=remember(mode) if count is None and final else None,
        )
        return ArticleSearch(text, results, terms, stems, mode, count)

    def similar(count: int | None) -> ArticleSearch:
        # `<%` (word similarity >= pg_trgm's threshold, 0.6) is answered by the title's trigram index.
        results = RankedResults(
            base,
            Q(title__trigram_word_similar=text),
            TrigramWordSimilarity(text, "title"),
            ("-id",),
            count=count,
            on_count=remember("similar") if count is None else None,
        )
        return ArticleSearch(text, results, [text], stems, "similar", count)

    def nothing() -> ArticleSearch:
        return ArticleSearch(
            text, base.none().annotate(score=Value(0.0, output_field=FloatField())), terms, stems, count=0
        )

    if cached is not None and cached.mode is not None:
        if cached.mode in ("all", "any") and words:
            return full_text(cached.mode == "all", cached.count)
        if cached.mode == "similar":
            return similar(cached.count)
        if cached.mode == "none":
            return nothing()

    modes = (False,) if prefer_any else (True, False)
    if len(words) == 1:
        modes = (True,)
    for match_all in modes:
        if not words:
            break
        # Only a one-word query falls through to the trigram (typo) fallback, so only then is
        # emptiness checked after the last full-text mode.
        may_fall_back = match_all != modes[-1] or (len(words) == 1 and len(text) <= SHORT_QUERY_CHARS)
        search = full_text(match_all, None, final=not may_fall_back)
        if may_fall_back:
            # count(), not exists(): with LIMIT 1 the planner prefers a sequential scan that reads
            # every vector when nothing matches; the count goes through the GIN index and is reused
            # by the paginator.
            count = search.queryset.count()
            if count == 0:
                continue
            search.count = count
            if cached is not None:
                cached.store(search.mode, count)
        return search
    if text and len(words) <= 1 and len(text) <= SHORT_QUERY_CHARS:
        return similar(None)
    if cached is not None:
        cached.store("none", 0)
    return nothing()


def plain_text(markdown: str) -> str:
    """Markdown reduced to readable text for snippets."""
    return _SPACES.sub(" ", _MARKDOWN_NOISE.sub(" ", markdown or "")).strip()


def _pattern(terms: list[str], stems: list[str]) -> re.Pattern | None:
    return _patterns(tuple(terms), tuple(stems))[0]


@lru_cache(maxsize=1024)
def _patterns(terms: tuple[str, ...], stems: tuple[str, ...]) -> tuple[re.Pattern | None, re.Pattern | None]:
    """The highlighting pattern, and a looser one (no word boundaries) that finds, in raw Markdown,
    where the first highlighted word can start: compiled once per query, not once per hit."""
    alternatives = [re.escape(t) for t in terms if CJK.search(t)]
    loose = list(alternatives)
    latin = {t for t in terms if not CJK.search(t)} | set(stems)
    ordered = [s for s in sorted(latin, key=len, reverse=True) if s]
    alternatives += [rf"\b{re.escape(s)}\w*" for s in ordered]
    loose += [re.escape(s) for s in ordered]
    if not alternatives:
        return None, None
    return re.compile("|".join(alternatives), re.IGNORECASE), re.compile("|".join(loose), re.IGNORECASE)


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
    pattern, loose = _patterns(tuple(terms), tuple(stems))
    body = article.body or ""
    if pattern is not None:
        # Only a window of the body is reduced to text: a match in the reduced text is made of
        # characters that are contiguous in the Markdown too (noise becomes spaces), so none can
        # start before the first loose match; the whole body is read only if the window has none.
        candidate = loose.search(body)
        if candidate is not None:
            lo, hi = max(0, candidate.start() - SNIPPET_CHARS), candidate.start() + 3 * SNIPPET_CHARS
            window = plain_text(body[lo:hi])
            match = pattern.search(window)
            if match:
                return _snippet_around(window, match, pattern, more_before=lo > 0, more_after=hi < len(body))
            text = plain_text(body)
            match = pattern.search(text)
            if match:
                return _snippet_around(text, match, pattern, more_before=False, more_after=False)
        match = pattern.search(article.summary)
        if match:
            return _snippet_around(article.summary, match, pattern, more_before=False, more_after=False)
    fallback = article.summary or plain_text(body)
    return escape(fallback[:SNIPPET_CHARS] + ("…" if len(fallback) > SNIPPET_CHARS else ""))


def _snippet_around(
    source: str, match: re.Match, pattern: re.Pattern, *, more_before: bool, more_after: bool
) -> SafeString:
    start = max(0, match.start() - SNIPPET_CHARS // 4)
    piece = source[start : start + SNIPPET_CHARS]
    prefix = "…" if start > 0 or more_before else ""
    suffix = "…" if start + SNIPPET_CHARS < len(source) or more_after else ""
    return mark_safe(prefix + highlight(piece, pattern) + suffix)  # noqa: S308 - escaped by highlight


def highlight_title(title: str, terms: list[str], stems: list[str]) -> SafeString:
    return highlight(title, _pattern(terms, stems))
