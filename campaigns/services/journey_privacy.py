"""A person's data in customer journeys: pseudonymised on erasure, deleted after the retention period."""

import datetime as dt
import logging

from django.db import transaction

from campaigns.models import Conversion, Touchpoint

log = logging.getLogger(__name__)


def customer_references_pseudonymise(old: str, new: str) -> dict[str, int]:
    """Rewrite a customer's external id in touchpoints and conversions (an erasure gives the person a
    surrogate id): attribution pairs them by that id, so every figure stays the same. Runs in the
    caller's transaction; returns the rows rewritten per kind."""
    touchpoints = Touchpoint.objects.filter(customer_external_id=old).update(customer_external_id=new)
    conversions = Conversion.objects.filter(customer_external_id=old).update(customer_external_id=new)
    return {"touchpoints": touchpoints, "conversions": conversions}


def _journeys_delete_batch(
    model: type[Touchpoint] | type[Conversion], before: dt.datetime, batch: int
) -> int:
    with transaction.atomic():
        ids = list(
            model.objects.filter(occurred_at__lt=before)
            .order_by("occurred_at")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return 0
        deleted, _by_model = model.objects.filter(pk__in=ids).delete()
    return deleted


def journeys_delete_before(*, before: dt.datetime, batch: int) -> dict[str, int]:
    """Retention: delete touchpoints and conversions that occurred before `before`, `batch` rows per
    transaction; returns how many of each."""
    counts = {}
    for name, model in (("touchpoints", Touchpoint), ("conversions", Conversion)):
        counts[name] = 0
        while True:
            deleted = _journeys_delete_batch(model, before, batch)
            counts[name] += deleted
            if deleted < batch:
                break
    log.info("retention: journeys before %s deleted: %s", before, counts)
    return counts
