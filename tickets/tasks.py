"""Periodic ticket jobs: entry points only, the work is in tickets.services."""

from celery import shared_task

from tickets import services


@shared_task(acks_late=True)
def sla_scan() -> dict[str, int]:
    """Every minute: store at-risk / breached states and notify once per new state."""
    return services.sla_scan()


@shared_task(acks_late=True)
def auto_close_resolved() -> int:
    """Every hour: close tickets resolved more than 7 days ago."""
    return services.auto_close_resolved()
