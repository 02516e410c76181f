"""A campaign's KPI targets compared with its actuals (issue 21): the summary API's `kpi` list and the
campaign page's attainment table.

Targets are `Campaign.kpi_targets` ({metric: number}, rates as fractions, ROAS as a multiple: the way
campaigns.figures states figures); actuals are the campaign summary's figures (SQL sums over the daily
metrics, ratios from those sums). For every target of a known metric:

    attainment = actual / target        (null when the target is 0 or the actual has no value)

The same formula for every metric. For the metrics where lower is better (spend, CAC, cost per lead)
an attainment of 1 or less means the target is met; everywhere else 1 or more does (docs/campaigns.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from campaigns import permissions
from campaigns.figures import FORMATS, LABELS, format_figure
from campaigns.kpi_targets import MAX_TARGET, METRICS, read_rows, rows_from_targets, unit
from campaigns.models import Campaign

LOWER_IS_BETTER = frozenset({"spend", "cac", "cost_per_lead"})
# how close to the target counts as "nearly" (amber): within 20 %
NEAR = 0.2


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return float(number) if number.is_finite() else None


def attainment(actual: float | None, target: float | None) -> float | None:
    """actual / target; None when either is missing or the target is 0."""
    if actual is None or target is None or target == 0:
        return None
    return actual / target


def kpi_rows(targets: Mapping[str, Any] | None, summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`[{metric, target, actual, attainment}]` for every target of a known metric, in the figures' order
    (a key typed before the metrics were fixed has no actual to compare and is left out)."""
    rows: list[dict[str, Any]] = []
    targets = targets or {}
    for metric in METRICS:
        if metric not in targets:
            continue
        target = _number(targets[metric])
        if target is None:
            continue
        actual = _number(summary.get(metric))
        rows.append(
            {"metric": metric, "target": target, "actual": actual, "attainment": attainment(actual, target)}
        )
    return rows


def standing(metric: str, value: float | None) -> str:
    """met / near / missed / unknown: how an attainment reads for this metric (colours on the page)."""
    if value is None:
        return "unknown"
    if metric in LOWER_IS_BETTER:
        return "met" if value <= 1 else "near" if value <= 1 + NEAR else "missed"
    return "met" if value >= 1 else "near" if value >= 1 - NEAR else "missed"


def kpi_shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the page shows them: words, each figure the way it reads, attainment in percent."""
    shown = []
    for row in rows:
        kind = FORMATS.get(row["metric"], "")
        shown.append(
            {
                **row,
                "label": str(LABELS.get(row["metric"], row["metric"])),
                "target_shown": format_figure(row["target"], kind),
                "actual_shown": format_figure(row["actual"], kind),
                "attainment_shown": format_figure(row["attainment"], "percent"),
                "standing": standing(row["metric"], row["attainment"]),
                "lower_is_better": row["metric"] in LOWER_IS_BETTER,
            }
        )
    return shown


@transaction.atomic
def kpi_targets_set(*, campaign: Campaign, by: User, targets: Mapping[str, Any]) -> Campaign:
    """Replace the campaign's KPI targets (the owner or a manager); checked, audited."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not permissions.can_edit_kpi_targets(by, campaign):
        raise PermissionDenied(_("Only the campaign's owner or a manager changes its KPI targets."))
    clean: dict[str, int | float] = {}
    for metric, value in targets.items():
        if metric not in METRICS:
            raise DjangoValidationError({"targets": _("Unknown metric: %(metric)s.") % {"metric": metric}})
        number = _number(value)
        if number is None or number < 0 or number > MAX_TARGET:
            raise DjangoValidationError(
                {"targets": _("%(metric)s: enter a number from 0 to 10¹².") % {"metric": LABELS[metric]}}
            )
        clean[metric] = int(number) if number == int(number) else number
    old = campaign.kpi_targets
    if old == clean:
        return campaign
    campaign.kpi_targets = clean
    campaign.save(update_fields=["kpi_targets", "updated_at"])
    audit_record(actor=by, action="campaign.kpi_targets", obj=campaign, changes={"kpi_targets": [old, clean]})
    return campaign


def kpi_inputs(
    targets: Mapping[str, Any] | None, posted: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One input per metric for the targets form: its words, unit and the value as typed (rates in %)."""
    typed = {row.metric: row.target for row in rows_from_targets(targets) if row.metric}
    return [
        {
            "metric": metric,
            "label": str(LABELS[metric]),
            "unit": unit(metric),
            "value": posted.get(metric, "") if posted is not None else typed.get(metric, ""),
        }
        for metric in METRICS
    ]


def kpi_targets_read(posted: Mapping[str, str]) -> tuple[dict[str, int | float], dict[str, str]]:
    """The posted inputs ({metric: typed text}) as targets, and each bad input's message by metric."""
    metrics = [m for m in METRICS if str(posted.get(m, "")).strip()]
    values, rows = read_rows(metrics, [str(posted[m]) for m in metrics], allowed=set(METRICS))
    return values, {row.metric: row.error for row in rows if row.error}
