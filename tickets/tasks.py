"""Periodic ticket jobs: entry points only, the work is in tickets.services."""

from celery import shared_task

from tickets import services


@shared_task(acks_late=True)
def sla_scan() -> dict[str, int]:
    """Every minute: store at-risk / breached states and notify once per new state; then fire the
    escalation rules whose mark has passed (tickets.escalation; counted as `escalated_<action>` when any)."""
    from tickets.escalation import escalation_scan

    counts = services.sla_scan()
    counts.update({f"escalated_{action}": n for action, n in escalation_scan().items() if n})
    return counts


@shared_task(acks_late=True)
def auto_close_resolved() -> int:
    """Every hour: close tickets resolved more than 7 days ago."""
    return services.auto_close_resolved()


@shared_task(acks_late=True)
def poll_inbound_imap() -> dict[str, int]:
    """Every INBOUND_IMAP_POLL_SECONDS when INBOUND_IMAP_URL is set: unread mail becomes tickets/replies."""
    from tickets.intake_email.imap import imap_poll

    return imap_poll()


@shared_task(acks_late=True, autoretry_for=(ConnectionError, OSError), retry_backoff=True, max_retries=5)
def send_inbound_refusal(to: str, subject: str, in_reply_to: str) -> None:
    """The polite refusal to an unknown sender (e-mail intake, INBOUND_UNKNOWN_SENDER = "reject")."""
    from tickets.intake_email.replies import refusal_send

    refusal_send(to=to, subject=subject, in_reply_to=in_reply_to)


@shared_task(bind=True, acks_late=True, max_retries=None)
def deliver_chat(self, delivery_id: int) -> str:  # noqa: ANN001 (the bound task)
    """Try a team-chat robot delivery; tried again with backoff until the robot accepts it or it fails
    (tickets.chat_robots records every attempt)."""
    from tickets.chat_robots import delivery_attempt, retry_delay

    delivery = delivery_attempt(delivery_id)
    if delivery is None:
        return "gone"
    if delivery.status == delivery.Status.PENDING:
        raise self.retry(countdown=retry_delay(delivery.attempts))
    return delivery.status


@shared_task(acks_late=True)
def milestone_reminders() -> int:
    """Every hour: remind about plan milestones due within MILESTONE_REMINDER_DAYS, once each."""
    from tickets.milestones import milestone_reminders_send

    return milestone_reminders_send()
