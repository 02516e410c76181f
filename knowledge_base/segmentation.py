"""Chinese word segmentation for the index and the query: one jieba tokenizer per process, with the
project's marketing dictionary, loaded on first use.

The index and the query are cut the same way (precise mode with jieba's HMM for words no dictionary
holds); the index also keeps, for each long word, the shorter dictionary words inside it (search mode).
"""

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
# What a query is split into before segmentation: runs of letters, digits and CJK characters.
_RUN = re.compile(r"[^\W_]+")
# jieba's HMM finds words no dictionary holds (复购, 数智化 before they were added): on for both sides.
HMM = True


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


def _kept(pieces: object) -> list[str]:
    return [t for t in (w.strip().lower() for w in pieces) if t and _WORD.search(t)]


def tokens(text: str) -> list[str]:
    """Search-mode tokens of a text, lower-cased: each word, preceded by the dictionary words inside it."""
    if not text:
        return []
    return _kept(tokenizer().cut_for_search(text, HMM=HMM))


def segment(text: str) -> str:
    """The text as space-separated tokens, ready for to_tsvector."""
    return " ".join(tokens(text))


def words(text: str) -> list[str]:
    """The words of a text in order, lower-cased (precise mode: what the index holds, without the
    shorter words search mode adds)."""
    if not text:
        return []
    return _kept(tokenizer().cut(text, HMM=HMM))


def parts(word: str) -> list[str]:
    """The dictionary words of two or more characters inside a longer word, none inside another
    (获客成本 → 获客, 成本; 营销自动化 → 营销, 自动化)."""
    inside = [t for t in dict.fromkeys(tokens(word)) if t != word and len(t) >= 2]
    return [t for t in inside if not any(t != other and t in other for other in inside)]


def runs(text: str) -> list[str]:
    """The runs of letters, digits and CJK characters of a text, lower-cased (punctuation and spaces
    separate them): what a query must contain as written."""
    return _RUN.findall(text.lower())
