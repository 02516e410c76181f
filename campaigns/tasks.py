"""Celery entry points for campaigns (thin: they call services)."""

from celery import shared_task

from campaigns.services import campaigns_follow_dates


@shared_task(acks_late=True)
def follow_dates() -> int:
    """Beat: approved campaigns start running on their start date and complete after their end date."""
    return campaigns_follow_dates()
