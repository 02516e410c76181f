"""Retention: what is older than its kept period (settings.RETENTION_DAYS, days per kind; 0 keeps it
forever) is deleted in batches of RETENTION_BATCH, each app deleting its own rows through its services.

    events          customer events (lifetime totals and ranks of the touched customers kept exact)
    touchpoints     campaign touchpoints and conversions
    report_files    finished report jobs and their files
    access_log      the log of unmasked reads
    privacy_files   done exports' files (the request and its report stay)
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_record
from analytics import services as analytics_services
from campaigns import services as campaign_services
from config.uploads import orphan_files_delete
from crm_tags import retention as crm_retention
from privacy.models import PrivacyRequest, UnmaskedAccess

log = logging.getLogger(__name__)


def access_log_delete_before(*, before: datetime, batch: int) -> dict[str, int]:
    """Access-log rows older than `before`, oldest first, `batch` per transaction (through the time index)."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                UnmaskedAccess.objects.filter(at__lt=before)
                .order_by("at")
                .values_list("pk", flat=True)[:batch]
            )
            if ids:
                UnmaskedAccess.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch:
            break
    return {"deleted": deleted}


def export_files_delete_before(*, before: datetime, batch: int) -> dict[str, int]:
    """Files of exports finished before `before` are deleted; the requests keep their status and report.
    Files in the exports folder that no request names, as old, go too (a job that died after saving)."""
    files = 0
    while True:
        with transaction.atomic():
            rows = list(
                PrivacyRequest.objects.select_for_update(skip_locked=True)
                .filter(kind=PrivacyRequest.Kind.EXPORT, finished_at__lt=before)
                .exclude(file="")
                .order_by("finished_at")
                .values_list("pk", "file")[:batch]
            )
            for _pk, name in rows:
                if default_storage.exists(name):
                    default_storage.delete(name)
            PrivacyRequest.objects.filter(pk__in=[pk for pk, _name in rows]).update(file="")
        files += len(rows)
        if len(rows) < batch:
            break
    named = set(PrivacyRequest.objects.exclude(file="").values_list("file", flat=True))
    orphans = orphan_files_delete(folder="privacy", kept=named, before=before, limit=batch)
    return {"files": files + orphans}


Apply = Callable[..., dict[str, int]]
KINDS: dict[str, Apply] = {
    "events": crm_retention.events_delete_before,
    "touchpoints": campaign_services.journeys_delete_before,
    "report_files": analytics_services.report_files_delete_before,
    "access_log": access_log_delete_before,
    "privacy_files": export_files_delete_before,
}


def retention_apply(*, now: datetime | None = None) -> dict[str, Any]:
    """Apply every kind's retention period; returns the counts per kind (a kind that fails is logged with
    its error and the others still run). Audited with the counts."""
    now = now or timezone.now()
    batch = int(settings.RETENTION_BATCH)
    results: dict[str, Any] = {}
    for kind, apply in KINDS.items():
        days = int(settings.RETENTION_DAYS.get(kind) or 0)
        if days <= 0:
            continue
        before = now - timedelta(days=days)
        started = time.monotonic()
        try:
            results[kind] = apply(before=before, batch=batch)
        except Exception as exc:  # noqa: BLE001 - one kind failing must not keep the others' data forever
            log.exception("retention of %s failed", kind)
            results[kind] = {"error": exc.__class__.__name__}
            continue
        log.info(
            "retention %s (older than %s days): %s in %.2fs",
            kind,
            days,
            results[kind],
            time.monotonic() - started,
        )
    audit_record(actor=None, action="privacy.retention", object_type="privacy.retention", changes=results)
    return results
