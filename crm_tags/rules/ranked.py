"""Ranked counts: a leaf "count of T >= k in the last N days" read from the kept ranks of (T, k)."""

import math
from decimal import Decimal
from typing import Any

from crm_tags.rules.validation import _is_number

MAX_RANK = 50  # the largest k kept as a rank (each registered k costs one row per customer)


def rank_of(op: str, value: Any) -> int | None:
    """The k for which `count {op} value` is `count >= k` (None when no k in 1..MAX_RANK is)."""
    if op not in (">=", ">") or not _is_number(value):
        return None
    number = Decimal(str(value))
    k = math.ceil(number) if op == ">=" else math.floor(number) + 1
    return k if 1 <= k <= MAX_RANK else None


def ranked_leaf(definition: Any) -> tuple[dict, int] | None:
    """The first leaf of the rule's top-level AND of the form "count of T >= k in the last N days",
    with its k: such a leaf drives the statement from the ranks of (T, k) once they are kept."""
    if not isinstance(definition, dict):
        return None
    if "all" in definition:
        for child in definition["all"]:
            found = ranked_leaf(child)
            if found:
                return found
        return None
    if definition.get("agg") == "count" and definition.get("window_days") and "event" in definition:
        k = rank_of(definition.get("op", ""), definition.get("value"))
        if k is not None:
            return definition, k
    return None
