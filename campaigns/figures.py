"""Marketing figures, defined once: used by the campaign page, the API, reviews and the analytics dashboards.

Two halves:
- `totals_annotations()`: SQL `Sum` expressions over `DailyMetric` fields, for `.aggregate()` or
  `.values(...).annotate()` on a DailyMetric queryset (prefix them for another model).
- `ratios(totals, budget=None)`: the ratios computed from those totals; any zero (or missing)
  denominator gives None, never an error. Ratios are fractions (0.25 means 25 %).

ROI = (revenue - spend) / spend; ROAS = revenue / spend; CAC = spend / conversions;
CTR = clicks / impressions; CVR = conversions / clicks; cost per lead = spend / leads;
budget used = spend / budget.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

MONEY_FIELDS = ("spend", "revenue")
COUNT_FIELDS = ("impressions", "clicks", "leads", "conversions")
TOTAL_FIELDS = MONEY_FIELDS + COUNT_FIELDS
RATIO_FIELDS = ("roi", "roas", "cac", "ctr", "cvr", "cost_per_lead", "budget_used_pct")
FUNNEL_STEPS = ("impressions", "clicks", "leads", "conversions")


def totals_annotations(prefix: str = "") -> dict[str, Any]:
    """`{name: Sum(...)}` for spend, revenue, impressions, clicks, leads, conversions (0 when no rows).

    `prefix` points at DailyMetric from another model, e.g. `totals_annotations("daily_metrics__")`
    on a Campaign queryset.
    """
    annotations: dict[str, Any] = {}
    for name in MONEY_FIELDS:
        annotations[name] = Coalesce(
            Sum(f"{prefix}{name}"),
            Value(Decimal("0")),
            output_field=DecimalField(max_digits=18, decimal_places=2),
        )
    for name in COUNT_FIELDS:
        annotations[name] = Coalesce(Sum(f"{prefix}{name}"), Value(0))
    return annotations


def _divide(numerator: Any, denominator: Any) -> float | None:
    if numerator is None or denominator is None:
        return None
    denominator = Decimal(str(denominator))
    if denominator == 0:
        return None
    return float(Decimal(str(numerator)) / denominator)


def roi(*, revenue: Any, spend: Any) -> float | None:
    """(revenue - spend) / spend."""
    if revenue is None or spend is None:
        return None
    return _divide(Decimal(str(revenue)) - Decimal(str(spend)), spend)


# How each figure reads, defined once for every page, chart, e-mail and file (issue 18, item 8):
# money with separators and cents; rates (a part of a whole, or a return) as a percentage; multiples
# (ROAS: revenue per unit of spend) with a times sign, never as a percentage.
MONEY, PERCENT, MULTIPLE, COUNT = "money", "percent", "multiple", "count"
FORMATS: dict[str, str] = {
    "spend": MONEY,
    "revenue": MONEY,
    "cac": MONEY,
    "cost_per_lead": MONEY,
    "roi": PERCENT,
    "ctr": PERCENT,
    "cvr": PERCENT,
    "budget_used_pct": PERCENT,
    "roas": MULTIPLE,
    "impressions": COUNT,
    "clicks": COUNT,
    "leads": COUNT,
    "conversions": COUNT,
}

# What each figure is called on pages (KPI targets, tiles); the abbreviations are the trade's own.
LABELS: dict[str, str | Promise] = {
    "spend": _("Spend"),
    "revenue": _("Revenue"),
    "roi": _("ROI"),
    "roas": _("ROAS"),
    "cac": _("CAC"),
    "ctr": _("CTR"),
    "cvr": _("CVR"),
    "cost_per_lead": _("Cost per lead"),
    "budget_used_pct": _("Budget used"),
    "impressions": _("Impressions"),
    "clicks": _("Clicks"),
    "leads": _("Leads"),
    "conversions": _("Conversions"),
}


def format_figure(value: Any, kind: str, *, digits: int | None = None) -> str:
    """A figure as people read it: 1234.5 money → "1,234.50"; 0.1234 percent → "12.3%";
    3.4412 multiple → "3.44×"; None → "—"."""
    if value is None or value == "":
        return "—"
    if kind == PERCENT:
        return f"{float(value) * 100:.{1 if digits is None else digits}f}%"
    if kind == MULTIPLE:
        return f"{float(value):.{2 if digits is None else digits}f}×"
    if kind == COUNT:
        return f"{int(value):,}"
    return f"{float(value):,.{2 if digits is None else digits}f}"


def target_rows(targets: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """KPI targets as (label, value) the way each figure reads: {"roi": 1.5} → [("ROI", "150.0%")]. A key
    that is not a known figure shows as it was entered, its value as is."""
    rows = []
    for key, value in (targets or {}).items():
        kind = FORMATS.get(key)
        try:
            shown = format_figure(value, kind) if kind else str(value)
        except (TypeError, ValueError):
            shown = str(value)
        rows.append((str(LABELS.get(key, key)), shown))
    return rows


def ratios(totals: Mapping[str, Any], budget: Any = None) -> dict[str, float | None]:
    """Every ratio from a totals mapping (missing totals count as 0); None on a zero denominator."""
    spend = totals.get("spend") or 0
    revenue = totals.get("revenue") or 0
    impressions = totals.get("impressions") or 0
    clicks = totals.get("clicks") or 0
    leads = totals.get("leads") or 0
    conversions = totals.get("conversions") or 0
    return {
        "roi": roi(revenue=revenue, spend=spend),
        "roas": _divide(revenue, spend),
        "cac": _divide(spend, conversions),
        "ctr": _divide(clicks, impressions),
        "cvr": _divide(conversions, clicks),
        "cost_per_lead": _divide(spend, leads),
        "budget_used_pct": _divide(spend, budget) if budget is not None else None,
    }


def figures(totals: Mapping[str, Any], budget: Any = None) -> dict[str, Any]:
    """Totals as plain numbers (money as float) plus every ratio: the shape the API and pages use."""
    out: dict[str, Any] = {}
    for name in MONEY_FIELDS:
        out[name] = float(totals.get(name) or 0)
    for name in COUNT_FIELDS:
        out[name] = int(totals.get(name) or 0)
    out.update(ratios(totals, budget))
    return out


def funnel(totals: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Impressions → clicks → leads → conversions, each step with its rate from the step before."""
    steps: list[dict[str, Any]] = []
    previous: Any = None
    for name in FUNNEL_STEPS:
        value = int(totals.get(name) or 0)
        steps.append(
            {"step": name, "value": value, "rate": _divide(value, previous) if previous is not None else None}
        )
        previous = value
    return steps
