"""Article search: Chinese words matched as substrings (character pairs in a GIN-indexed array, then
the text itself), Latin words in the full-text index (`simple` + stemmed `english`); ranked by phrase
matches with ts_rank_cd, title > summary > body; highlighted snippets; a pg_trgm fallback for short,
mistyped queries. docs/knowledge_base.md explains the levels a query goes through."""

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

from knowledge_base import segmentation
from knowledge_base.models import Article
from knowledge_base.search_cache import CountCache
from knowledge_base.segmentation import CJK

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


@dataclass(frozen=True)
class ParsedQuery:
    """A query as typed (its runs of letters, digits and CJK characters, lower-cased) and its words,
    cut like the index; stop words dropped."""

    runs: tuple[str, ...]
    words: tuple[str, ...]


def parse_query(text: str) -> ParsedQuery:
    """The runs and words of a query (its first 200 characters)."""
    runs, words = [], []
    for run in segmentation.runs(text[:200]):
        meaningful = [w for w in segmentation.words(run) if w not in STOP_WORDS]
        if meaningful:
            runs.append(run)
            words += meaningful
    unique = list(dict.fromkeys(words))
    # A lone CJK character among other words is a particle or a verb (了, 的, 发): it would make
    # "every word" fail and "any word" match nearly everything. Alone, it is the query.
    longer = [w for w in unique if not (len(w) == 1 and CJK.match(w))]
    return ParsedQuery(tuple(dict.fromkeys(runs)), tuple(longer or unique))


def query_words(text: str) -> list[str]:
    """The meaningful words of a query, cut like the index (stop words and lone CJK characters dropped)."""
    return list(parse_query(text).words)


@dataclass(frozen=True)
class Level:
    """One way of matching a query: its terms must all (or any one) be in an article; the ranking
    counts where the words occur."""

    mode: str  # "phrase", "all", "parts", "any"
    terms: tuple[str, ...]
    rank_words: tuple[str, ...]
    match_all: bool = True


def query_levels(query: ParsedQuery, *, prefer_any: bool = False) -> list[Level]:
    """From strict to loose, each tried only when the stricter ones find nothing: the runs as typed
    (获客渠道), every word (获客 and 渠道), every word or all of its parts (获客成本 → 获客 and 成本),
    any word. Levels that would match the same articles as an earlier one are left out."""
    words = query.words
    if not words:
        return []
    split = tuple(
        dict.fromkeys(p for w in words for p in (segmentation.parts(w) if CJK.search(w) else ()) or (w,))
    )
    candidates = [
        Level("phrase", query.runs, words),
        Level("all", words, words),
        Level("parts", split, split),
        Level("any", words, words, match_all=False),
    ]
    if prefer_any:
        candidates = [candidates[3], candidates[2]]
    if set(query.runs) == set(words):
        candidates = [lv for lv in candidates if lv.mode != "phrase"]
    levels, seen = [], set()
    for level in candidates:
        key = (frozenset(level.terms), level.match_all or len(level.terms) == 1)
        if key not in seen:
            seen.add(key)
            levels.append(level)
    return levels


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
    def prefix(cls, word: str) -> "TsQuery":
        if not _PREFIXABLE.match(word):
            raise ValueError(word)
        return cls("to_tsquery('simple'::regconfig, %s)", (f"{word}:*",))

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
    """ts_rank_cd (cover density: every occurrence counts, closer words count more) with the weights
    title (A) 1.0, summary (B) 0.4, body (C) 0.1: one title match is worth ten in the body."""

    function = "ts_rank_cd"
    template = "%(function)s('{0.05, 0.1, 0.4, 1.0}'::float4[], %(expressions)s)"
    output_field = FloatField()


_PREFIXABLE = re.compile(r"^[a-z][a-z0-9]+$")
_LATIN = re.compile(r"[a-z]")


def _word_rank_query(word: str) -> TsQuery:
    """The lexemes a word is indexed as: itself (Chinese), or its English stem, itself, or a word it
    begins (Latin: GMV also finds GMV2024)."""
    if CJK.search(word):
        return TsQuery.plain("simple", word)
    exact = TsQuery.prefix(word) if _PREFIXABLE.match(word) else TsQuery.plain("simple", word)
    return TsQuery.combine([TsQuery.plain("english", word), exact], "||")


def _grams(term: str) -> list[str]:
    """The characters and character pairs of `search_ngrams` that every article containing the term holds."""
    grams = []
    for run in re.findall(r"[\u3400-\u9fff\uf900-\ufaff]+", term):
        grams += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    return list(dict.fromkeys(grams))


def _substring(term: str) -> Q:
    """The article contains the term as written (a Chinese term, or a run mixing Chinese with Latin)."""
    condition = Q(search_ngrams__contains=_grams(term))
    if len(term) > 2 or not CJK.fullmatch(term[0]) or not CJK.fullmatch(term[-1]):
        # More than one pair: they are all in the article, but maybe not in a row. LIKE per column
        # (byte-wise on UTF-8, no concatenated copy) is about three times cheaper than strpos().
        lookup = "icontains" if _LATIN.search(term) else "contains"
        condition &= (
            Q(**{f"title__{lookup}": term})
            | Q(**{f"summary__{lookup}": term})
            | Q(**{f"body__{lookup}": term})
        )
    return condition


def level_condition(level: Level) -> Q:
    """Every term (or any) in the article: Chinese as substrings, Latin words in the full-text index."""
    latin = [t for t in level.terms if not CJK.search(t)]
    conditions = [_substring(t) for t in level.terms if CJK.search(t)]
    if latin:
        query = TsQuery.combine([_word_rank_query(w) for w in latin], "&&" if level.match_all else "||")
        conditions.append(Q(Matches(F("search_vector"), query)))
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = (combined & condition) if level.match_all else (combined | condition)
    return combined


def level_rank(level: Level) -> Rank:
    query = TsQuery.combine(
        [_word_rank_query(w) for w in level.rank_words], "&&" if level.match_all else "||"
    )
    return Rank(F("search_vector"), query)


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
    """Rank `base` against the text: the strictest level of `query_levels` that finds anything, then
    trigram similarity of titles.

    With `cache_scope` (who is asking and with which filters: the same scope must mean the same
    `base`), the level reached and the number of hits are reused from the cache while no article
    changed, so a repeated query costs one ranking query.
    """
    text = (text or "").strip()
    query = parse_query(text)
    levels = query_levels(query, prefer_any=prefer_any)
    stems = english_stems(list(query.words))
    cached = CountCache.load(cache_scope, text, prefer_any) if cache_scope is not None else None

    def remember(mode: str) -> Any:
        if cached is None:
            return None
        return lambda count: cached.store(mode, count)

    def ranked(level: Level, count: int | None, *, final: bool = True) -> ArticleSearch:
        results = RankedResults(
            base,
            level_condition(level),
            level_rank(level),
            ("-published_at", "-id"),
            count=count,
            on_count=remember(level.mode) if count is None and final else None,
        )
        terms = sorted(set(level.terms), key=len, reverse=True)
        return ArticleSearch(text, results, terms, stems, level.mode, count)

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
            text,
            base.none().annotate(score=Value(0.0, output_field=FloatField())),
            list(query.words),
            stems,
            count=0,
        )

    if cached is not None and cached.mode is not None:
        level = next((lv for lv in levels if lv.mode == cached.mode), None)
        if level is not None:
            return ranked(level, cached.count)
        if cached.mode == "similar":
            return similar(cached.count)
        if cached.mode == "none":
            return nothing()

    # Only a short query of one word falls through to the trigram (typo) fallback, so only then is
    # emptiness checked after the last level.
    typo_fallback = bool(text) and len(query.words) <= 1 and len(text) <= SHORT_QUERY_CHARS
    for n, level in enumerate(levels):
        may_fall_back = n < len(levels) - 1 or typo_fallback
        search = ranked(level, None, final=not may_fall_back)
        if may_fall_back:
            # count(), not exists(): with LIMIT 1 the planner prefers a sequential scan that reads
            # every row when nothing matches; the count goes through the GIN indexes and is reused
            # by the paginator.
            count = search.queryset.count()
            if count == 0:
                continue
            search.count = count
            if cached is not None:
                cached.store(search.mode, count)
        return search
    if typo_fallback:
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
