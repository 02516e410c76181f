"""Chinese word segmentation for the search index: jieba, loaded once per process, on first use."""

import logging
import re
import threading
from pathlib import Path

import jieba

log = logging.getLogger(__name__)

DICTIONARY_PATH = Path(__file__).resolve().parent / "dictionary.txt"
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
# A token worth indexing holds at least one letter, digit or CJK character.
_WORD = re.compile(r"[0-9a-z\u3400-\u9fff\uf900-\ufaff]", re.IGNORECASE)
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def tokenizer() -> jieba.Tokenizer:
    """The process-wide jieba tokenizer with the project's marketing dictionary (built lazily, once)."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                instance = jieba.Tokenizer()
                instance.initialize()
                instance.load_userdict(str(DICTIONARY_PATH))
                log.info("jieba loaded with %s", DICTIONARY_PATH.name)
                _tokenizer = instance
    return _tokenizer


def tokens(text: str) -> list[str]:
    """Search-mode tokens of a text, lower-cased: long words also yield their shorter words."""
    if not text:
        return []
    return [t for t in (w.strip().lower() for w in tokenizer().cut_for_search(text)) if t and _WORD.search(t)]


def segment(text: str) -> str:
    """The text as space-separated tokens, ready for to_tsvector."""
    return " ".join(tokens(text))


def query_terms(text: str) -> list[str]:
    """The distinct terms of a search query, in order."""
    seen: dict[str, None] = {}
    for term in tokens(text[:200]):
        seen.setdefault(term, None)
    return list(seen)
