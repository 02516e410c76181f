"""A person's values found and replaced where they are stored as text or JSON (an erasure's last step
in each app): audit changes, event properties, the surrogate's attributes, error messages.

    scrubber = Scrubber(["PLANTED1", "zhang.wei@example.com", "13912345678", "张伟"])
    cursor.execute("SELECT id FROM t WHERE col::text ILIKE ANY(%s)", [scrubber.json_patterns()])
    row.changes = scrubber.json(row.changes)

Values of five characters or more are replaced wherever they occur (case-insensitive) but never inside a
longer identifier (letters or digits on either side); shorter ones (a two-character name, a short id)
only where they are the whole text or a whole JSON string.
"""

import json
import re
from collections.abc import Iterable
from typing import Any

ERASED = "[erased]"
MIN_SUBSTRING = 5


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Scrubber:
    """Finds and replaces one person's values."""

    def __init__(self, values: Iterable[Any]) -> None:
        cleaned = {str(v).strip() for v in values if v is not None and str(v).strip()}
        self.values = sorted(cleaned, key=len, reverse=True)
        self.long = [v for v in self.values if len(v) >= MIN_SUBSTRING]
        self.short = [v for v in self.values if len(v) < MIN_SUBSTRING]
        self.whole = {v.lower() for v in self.values}
        # never inside a longer identifier: "B1001" is not erased from "B10010"
        self._inside = (
            re.compile(
                "(?<![0-9A-Za-z])(?:" + "|".join(re.escape(v) for v in self.long) + ")(?![0-9A-Za-z])",
                re.IGNORECASE,
            )
            if self.long
            else None
        )

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        """The text with the values replaced."""
        if not text:
            return text
        if text.strip().lower() in self.whole:
            return ERASED
        return self._inside.sub(ERASED, text) if self._inside is not None else text

    def json(self, value: Any) -> Any:
        """A JSON value with the values replaced in every string and key."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            return {self.json(k): self.json(v) for k, v in value.items()}
        if isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in self.whole:
            return ERASED
        return value

    def text_patterns(self) -> list[str]:
        """ILIKE patterns (any of them) a text column matches when it may hold a value."""
        return [f"%{_like_escaped(v)}%" for v in self.long] + [_like_escaped(v) for v in self.short]

    def json_patterns(self) -> list[str]:
        """ILIKE patterns (any of them) a JSON column's text matches when it may hold a value."""
        quoted = [json.dumps(v, ensure_ascii=False) for v in self.short]
        return [f"%{_like_escaped(json.dumps(v, ensure_ascii=False)[1:-1])}%" for v in self.long] + [
            f"%{_like_escaped(q)}%" for q in quoted
        ]
