"""Search counts kept briefly: which mode a query ends in (all words, any word, similar titles) and
how many hits it has, per generation of the articles (any save or delete starts a new one)."""

import hashlib
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

# Which mode a query ends in and how many hits it has are kept briefly per generation of the
# articles: any article save or delete, and the bulk writes of `Article.objects` (delete, update of a
# searched field, bulk_create), start a new generation, so a cached count is never stale after a
# write through the ORM (the minute bounds writes that bypass it: raw SQL).
COUNT_CACHE_SECONDS = 60
_GENERATION_KEY = "kb:search:generation"


def invalidate_search_counts() -> None:
    """Start a new generation of cached search counts (after any change to articles)."""
    cache.set(_GENERATION_KEY, uuid.uuid4().hex, None)


def invalidate_search_counts_on_commit() -> None:
    """Now (this transaction's own later reads) and again after commit (a read made meanwhile by
    another request, before the write was visible to it, is not kept)."""
    invalidate_search_counts()
    transaction.on_commit(invalidate_search_counts)


@dataclass
class CountCache:
    """Where the mode and count of one query (for one visibility scope and filters) are kept."""

    key: str
    generation: str | None
    mode: str | None = None
    count: int | None = None

    @classmethod
    def load(cls, scope: str, text: str, prefer_any: bool) -> "CountCache":
        digest = hashlib.sha1(f"{scope}\x1f{prefer_any}\x1f{text}".encode(), usedforsecurity=False)
        entry = cls(f"kb:search:count:{digest.hexdigest()}", None)
        found = cache.get_many([_GENERATION_KEY, entry.key])  # one round trip
        entry.generation = found.get(_GENERATION_KEY)
        value = found.get(entry.key)
        if entry.generation and isinstance(value, tuple) and len(value) == 3 and value[0] == entry.generation:
            entry.mode, entry.count = value[1], value[2]
        return entry

    def store(self, mode: str, count: int) -> None:
        if self.generation is None:
            self.generation = uuid.uuid4().hex
            if not cache.add(_GENERATION_KEY, self.generation, None):
                return  # another request started the generation first: do not guess
        cache.set(self.key, (self.generation, mode, count), COUNT_CACHE_SECONDS)
