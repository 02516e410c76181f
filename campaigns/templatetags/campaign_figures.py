"""Showing figures: ratios as percentages, money with separators, a dash for undefined values."""

from typing import Any

from django import template

register = template.Library()


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """0.1234 → "12.3%"; None → "—"."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def money(value: Any) -> str:
    """1234.5 → "1,234.50"; None → "—"."""
    if value is None or value == "":
        return "—"
    return f"{float(value):,.2f}"


@register.filter
def ratio(value: Any) -> str:
    """2.5 → "2.50"; None → "—"."""
    if value is None or value == "":
        return "—"
    return f"{float(value):.2f}"


@register.filter
def count(value: Any) -> str:
    """14310214 → "14,310,214"; None → "—"."""
    if value is None or value == "":
        return "—"
    return f"{int(value):,}"
