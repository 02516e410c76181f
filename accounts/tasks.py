import logging

import requests
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.utils import timezone

from accounts.models import Notification
from accounts.services import outbox_flush

log = logging.getLogger(__name__)


def notification_mail_headers(notification: Notification) -> dict[str, str]:
    """A stable Message-ID naming the notification and its ticket key (`<notification-12.MT-1042@domain>`),
    so the e-mail intake threads a reply onto the ticket (tickets/intake_email/reply_threading.py); and
    RFC 3834's mark of a machine-written mail, so out-of-office robots do not answer it."""
    key = "".join(ch for ch in str((notification.params or {}).get("key", "")) if ch.isalnum() or ch == "-")
    local = f"notification-{notification.pk}.{key}" if key else f"notification-{notification.pk}"
    return {"Message-ID": f"<{local}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>", "Auto-Submitted": "auto-generated"}


@shared_task(acks_late=True, autoretry_for=(ConnectionError, OSError), retry_backoff=True, max_retries=5)
def send_notification_emails(notification_ids: list[int]) -> int:
    """E-mail each notification once (re-read, so a retry never sends twice)."""
    sent = 0
    pending = Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True).select_related(
        "recipient"
    )
    for notification in pending:
        if not notification.recipient.email:
            continue
        link = f"{settings.SITE_URL}{notification.url}" if notification.url else ""
        # in the recipient's language and locale, not in the language of whoever caused it
        title, body = notification.shown_to(notification.recipient)
        EmailMessage(
            subject=f"[MarTech Hub] {title}",
            body=f"{body}\n\n{link}".strip(),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[notification.recipient.email],
            headers=notification_mail_headers(notification),
        ).send()
        Notification.objects.filter(pk=notification.pk).update(emailed_at=timezone.now())
        sent += 1
    return sent


@shared_task(
    acks_late=True,
    autoretry_for=(requests.ConnectionError, requests.Timeout),
    retry_backoff=True,
    max_retries=5,
)
def post_chat_message(text: str) -> bool:
    """Post to the team-chat webhook when one is configured."""
    if not settings.CHAT_WEBHOOK_URL:
        return False
    response = requests.post(settings.CHAT_WEBHOOK_URL, json={"text": text}, timeout=5)
    response.raise_for_status()
    return True


@shared_task
def worker_heartbeat() -> str:
    """Beat's proof of life: the time the last periodic run reached a worker."""
    now = timezone.now().isoformat()
    cache.set("beat:last_heartbeat", now, timeout=None)
    return now


@shared_task(acks_late=True)
def flush_outbox(batch: int = 500) -> int:
    """Re-send tasks that were kept while the broker was down; stops at the first failure."""
    return outbox_flush(batch=batch)


@shared_task
def purge_sessions() -> int:
    """Forget sessions idle past the timeout or past their lifetime."""
    from accounts.user_sessions import sessions_purge

    return sessions_purge()


@shared_task
def audit_chain_anchor() -> str:
    """Log the audit chain's head, so the log (kept off this database) holds anchors for audit_verify."""
    from accounts.audit_chain import audit_chain_head

    seq, entry_hash = audit_chain_head()
    log.info("audit chain head %s:%s", seq, entry_hash)
    return f"{seq}:{entry_hash}"
