"""Periodic knowledge-base jobs (thin: they call services)."""

from celery import shared_task

from knowledge_base.services import articles_flag_stale


@shared_task(acks_late=True)
def flag_stale_articles() -> int:
    """Daily: flag published articles not reviewed for 180 days and notify their owners."""
    return articles_flag_stale()
