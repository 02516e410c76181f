"""Customer journeys imported from CSV for attribution: touchpoints and conversions, all or nothing."""

import logging
from collections.abc import Callable
from typing import IO, Any

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from campaigns.models import Campaign, Conversion, Touchpoint
from campaigns.services.import_cells import _parse_channel, _parse_decimal, _parse_moment
from campaigns.utm import normalise
from config.csv_import import ErrorCollector, read_rows

log = logging.getLogger(__name__)


TOUCHPOINT_COLUMNS = ["customer_external_id", "occurred_at", "channel"]
TOUCHPOINT_OPTIONAL = ["utm_source", "utm_medium", "utm_campaign"]
CONVERSION_COLUMNS = ["customer_external_id", "occurred_at", "revenue"]


def _journey_import(
    *,
    campaign: Campaign,
    upload: IO[bytes] | IO[str],
    by: User | None,
    columns: list[str],
    model: type[Touchpoint] | type[Conversion],
    more_fields: Callable[[dict[str, str], int, ErrorCollector], dict[str, Any]],
    action: str,
) -> int:
    """Touchpoints and conversions share their shape: a customer, a moment, and fields of their own."""
    _header, rows = read_rows(upload, columns)
    errors = ErrorCollector()
    records = []
    for number, record in rows:
        if None in record:
            errors.add(number, "", _("This row has more cells than the header."))
            continue
        customer = (record.get("customer_external_id") or "").strip()
        if not customer or len(customer) > 100:
            errors.add(number, "customer_external_id", _("Required, at most 100 characters."))
        moment = _parse_moment(record.get("occurred_at") or "", number, errors)
        fields = more_fields(record, number, errors)
        if errors.full:
            break
        if not errors.errors:
            records.append(
                model(campaign=campaign, customer_external_id=customer, occurred_at=moment, **fields)
            )
    errors.raise_if_any()
    model.objects.bulk_create(records, batch_size=2000)
    audit_record(actor=by, action=action, obj=campaign, changes={"rows": len(records)})
    log.info("campaign %s: %s %s rows imported", campaign.code, len(records), model.__name__)
    return len(records)


@transaction.atomic
def touchpoints_import(*, campaign: Campaign, upload: IO[bytes] | IO[str], by: User | None) -> int:
    """Import touchpoints from CSV, all or nothing (appended to those already stored)."""

    def channel_and_utm(record: dict[str, str], number: int, errors: ErrorCollector) -> dict[str, Any]:
        channel = _parse_channel(record.get("channel") or "", number, errors)
        return {"channel": channel, **{c: normalise(record.get(c) or "")[:100] for c in TOUCHPOINT_OPTIONAL}}

    return _journey_import(
        campaign=campaign,
        upload=upload,
        by=by,
        columns=TOUCHPOINT_COLUMNS,
        model=Touchpoint,
        more_fields=channel_and_utm,
        action="campaign.touchpoints_import",
    )


@transaction.atomic
def conversions_import(*, campaign: Campaign, upload: IO[bytes] | IO[str], by: User | None) -> int:
    """Import conversions from CSV, all or nothing (appended to those already stored)."""

    def revenue(record: dict[str, str], number: int, errors: ErrorCollector) -> dict[str, Any]:
        return {"revenue": _parse_decimal(record.get("revenue") or "", "revenue", number, errors)}

    return _journey_import(
        campaign=campaign,
        upload=upload,
        by=by,
        columns=CONVERSION_COLUMNS,
        model=Conversion,
        more_fields=revenue,
        action="campaign.conversions_import",
    )
