"""Celery entry points for personal data: thin, they take ids and call the services."""

from celery import shared_task

from privacy import retention, rights


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def run_export(request_id: int) -> str:
    """Write one person's data export (a request no longer running is left alone)."""
    req = rights.request_export_run(request_id=request_id)
    return req.status if req is not None else "skipped"


@shared_task(acks_late=True)
def run_erasure(request_id: int) -> str:
    """Erase one person, in one transaction (a request no longer running is left alone)."""
    req = rights.request_erase_run(request_id=request_id)
    return req.status if req is not None else "skipped"


@shared_task(acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def apply_retention() -> dict:
    """Beat (daily): delete what is older than its retention period, kind by kind, in batches."""
    return retention.retention_apply()
