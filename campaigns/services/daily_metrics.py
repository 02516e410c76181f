"""Daily metrics imported from CSV, all or nothing, with unusual rows held back for confirmation."""

import datetime as dt
import logging
from dataclasses import asdict
from typing import IO

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import status
from rest_framework.exceptions import APIException

from accounts.models import User
from accounts.services import audit_record
from campaigns.models import Campaign, DailyMetric
from campaigns.services.budget_warnings import _budget_warnings
from campaigns.services.import_cells import _parse_channel, _parse_count, _parse_decimal
from config.csv_import import MAX_ERRORS, ErrorCollector, RowError, read_rows

log = logging.getLogger(__name__)


METRIC_COLUMNS = ["date", "channel", "spend", "impressions", "clicks", "leads", "conversions", "revenue"]


class ImportNeedsConfirmation(APIException):
    """A valid file with rows that are likely mistakes (more clicks than impressions, days still to
    come): nothing is written until the person confirms them (the API's `confirm=true`)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "confirmation_required"

    def __init__(self, warnings: list[RowError], total: int | None = None) -> None:
        self.warnings = warnings[:MAX_ERRORS]
        self.total = len(warnings) if total is None else total
        summary = ngettext(
            "%(count)d row needs confirming; nothing was imported. Send the file again with confirm=true "
            "to import it as it is.",
            "%(count)d rows need confirming; nothing was imported. Send the file again with confirm=true "
            "to import it as it is.",
            self.total,
        ) % {"count": self.total}
        super().__init__(detail=summary)
        self.detail = {
            "detail": summary,
            "errors": [{**asdict(w), "code": "warning"} for w in self.warnings],
        }


def _metric_warnings(
    number: int, day: dt.date, counts: dict[str, int | None], today: dt.date
) -> list[RowError]:
    """What is unusual about a valid row: more clicks than impressions, a day after today."""
    found = []
    clicks, impressions = counts["clicks"], counts["impressions"]
    if clicks is not None and impressions is not None and clicks > impressions:
        found.append(
            RowError(
                row=number,
                column="clicks",
                message=_("More clicks (%(clicks)s) than impressions (%(impressions)s).")
                % {"clicks": clicks, "impressions": impressions},
            )
        )
    if day > today:
        found.append(
            RowError(
                row=number,
                column="date",
                message=_("%(day)s has not happened yet (today is %(today)s).")
                % {"day": day.isoformat(), "today": today.isoformat()},
            )
        )
    return found


@transaction.atomic
def metrics_import(
    *, campaign: Campaign, upload: IO[bytes] | IO[str], by: User | None, confirm: bool = False
) -> int:
    """Import daily metrics from CSV, all or nothing; the days in the file replace what was stored for them.

    A bad row rejects the file (ImportRejected). Rows that are valid but unusual (more clicks than
    impressions, a day after today) are warnings: without `confirm` the file is refused with them
    (ImportNeedsConfirmation), with it they are imported and the audit trail records them.
    """
    _header, rows = read_rows(upload, METRIC_COLUMNS)
    errors = ErrorCollector()
    warnings: list[RowError] = []  # the first MAX_ERRORS, shown; all are counted
    warned = 0
    today = timezone.localdate()
    records: list[DailyMetric] = []
    seen: dict[tuple[dt.date, str], int] = {}
    for number, record in rows:
        if None in record:
            errors.add(number, "", _("This row has more cells than the header."))
            continue
        try:
            day = parse_date((record.get("date") or "").strip())
        except ValueError:
            day = None
        if day is None:
            errors.add(number, "date", _("Not a date (use YYYY-MM-DD)."))
        channel = _parse_channel(record.get("channel") or "", number, errors)
        money = {c: _parse_decimal(record.get(c) or "", c, number, errors) for c in ("spend", "revenue")}
        counts = {
            c: _parse_count(record.get(c) or "", c, number, errors)
            for c in ("impressions", "clicks", "leads", "conversions")
        }
        if day is not None and channel is not None:
            if (day, channel) in seen:
                errors.add(
                    number,
                    "channel",
                    _("Same date and channel as row %(row)s.") % {"row": seen[(day, channel)]},
                )
            seen[(day, channel)] = number
        if errors.full:
            break
        if not errors.errors:
            found = _metric_warnings(number, day, counts, today)
            warned += len(found)
            if len(warnings) < MAX_ERRORS:
                warnings += found
            records.append(DailyMetric(campaign=campaign, date=day, channel=channel, **money, **counts))
    errors.raise_if_any()
    if warned and not confirm:
        raise ImportNeedsConfirmation(warnings, total=warned)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    days = sorted({r.date for r in records})
    replaced, _deleted = DailyMetric.objects.filter(campaign=campaign, date__in=days).delete()
    DailyMetric.objects.bulk_create(records, batch_size=1000)
    audit_record(
        actor=by,
        action="campaign.metrics_import",
        obj=campaign,
        changes={
            "rows": len(records),
            "replaced": replaced,
            "from": days[0].isoformat() if days else None,
            "to": days[-1].isoformat() if days else None,
            "warnings_confirmed": [asdict(w) for w in warnings[:20]],
            "warnings_confirmed_count": warned,
        },
    )
    _budget_warnings(campaign)
    log.info("campaign %s: %s metric rows imported, %s replaced", campaign.code, len(records), replaced)
    return len(records)
