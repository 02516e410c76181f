"""Showing figures as campaigns.figures.FORMATS defines them: rates as percentages, multiples with a
times sign, money with separators, a dash for undefined values."""

from typing import Any

from django import template

from campaigns.figures import COUNT, MONEY, MULTIPLE, PERCENT, format_figure, target_rows

register = template.Library()


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """0.1234 → "12.3%"; None → "—"."""
    return format_figure(value, PERCENT, digits=int(digits))


@register.filter
def money(value: Any) -> str:
    """1234.5 → "1,234.50"; None → "—"."""
    return format_figure(value, MONEY)


@register.filter
def ratio(value: Any) -> str:
    """A multiple (ROAS): 2.5 → "2.50×"; None → "—"."""
    return format_figure(value, MULTIPLE)


@register.filter
def count(value: Any) -> str:
    """14310214 → "14,310,214"; None → "—"."""
    return format_figure(value, COUNT)


@register.filter
def kpi_targets_shown(targets: Any) -> list[tuple[str, str]]:
    """KPI targets as (label, value): {"roi": 1.5} → [("ROI", "150.0%")]."""
    return target_rows(targets if isinstance(targets, dict) else {})
