"""KPI targets as rows on the campaign form: a metric chosen in words and a target typed the way the
figure reads (rates in percent, ROAS as a multiple); stored as {metric: number}, rates as fractions,
the way campaigns.figures reads them."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from campaigns.figures import FORMATS, LABELS, MULTIPLE, PERCENT
from config.inputs import InvalidInput, decimal_number

METRICS = tuple(name for name in LABELS if name != "budget_used_pct")
MAX_ROWS = 20
MAX_TARGET = 10**12
HUNDRED = Decimal(100)


@dataclass
class KpiRow:
    metric: str
    target: str
    error: str = ""


def unit(metric: str) -> str:
    """What a target of `metric` is typed in: "%" for rates, "×" for multiples, nothing for the rest."""
    return {PERCENT: "%", MULTIPLE: "×"}.get(FORMATS.get(metric, ""), "")


def metric_choices(extra: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(code, words, unit) for every metric a target may name; keys saved before stay choosable."""
    known = [(name, str(LABELS[name]), unit(name)) for name in METRICS]
    return known + [(name, name, "") for name in extra if name not in METRICS]


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


def rows_from_targets(targets: Mapping[str, Any] | None) -> list[KpiRow]:
    """Saved targets as the rows the form shows (rates back in percent)."""
    rows = []
    for metric, value in (targets or {}).items():
        try:
            number = Decimal(str(value))
            shown = _plain(number * HUNDRED if unit(metric) == "%" else number)
        except ArithmeticError:
            shown = str(value)
        rows.append(KpiRow(metric=str(metric), target=shown))
    return rows or [KpiRow(metric="", target="")]


def _stored(metric: str, number: Decimal) -> int | float:
    if unit(metric) == "%":
        number = number / HUNDRED
    return int(number) if number == number.to_integral_value() else float(number)


def read_rows(metrics: list[str], targets: list[str], *, allowed: set[str]) -> tuple[dict, list[KpiRow]]:
    """The posted rows as {metric: number}, and the rows to show again, each with its own problem."""
    rows: list[KpiRow] = []
    values: dict[str, int | float] = {}
    for index, metric in enumerate(metrics):
        target = targets[index] if index < len(targets) else ""
        row = KpiRow(metric=metric.strip(), target=target.strip())
        rows.append(row)
        if not row.metric and not row.target:
            continue
        if not row.metric:
            row.error = _("Choose a metric for this target.")
        elif row.metric not in allowed:
            row.error = _("Choose a metric from the list.")
        elif row.metric in values:
            row.error = _("%(metric)s is already listed above.") % {
                "metric": LABELS.get(row.metric, row.metric)
            }
        elif not row.target:
            row.error = _("Enter a target for this metric.")
        else:
            try:
                number = decimal_number(row.target, minimum=0, maximum=MAX_TARGET, places=4)
            except InvalidInput as exc:
                row.error = str(exc)
            else:
                values[row.metric] = _stored(row.metric, number)
    if len([r for r in rows if r.metric or r.target]) > MAX_ROWS:
        rows[-1].error = _("At most %(n)d targets.") % {"n": MAX_ROWS}
    return values, rows
