"""The polite refusal sent to an unknown sender (INBOUND_UNKNOWN_SENDER = "reject").

Marked as an automatic reply (RFC 3834 `Auto-Submitted: auto-replied`, Outlook's
`X-Auto-Response-Suppress`), so the sender's own robots do not answer it; never sent to a machine (the
intake ignores those before it gets here) and at most once an hour per address.
"""

from __future__ import annotations

from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import translation
from django.utils.translation import gettext as _


def refusal_send(*, to: str, subject: str, in_reply_to: str) -> None:
    """Tell an unknown sender, in the site's language, that the mail did not become a request."""
    with translation.override(settings.LANGUAGE_CODE):
        body = _(
            "Hello,\n\nThank you for your message. This address only accepts requests from people with "
            "an account on MarTech Hub, and we could not find one for your address, so no request was "
            "opened.\n\nIf you work with the marketing team, please ask your manager for an account, or "
            "file your request on the portal: %(url)s\n\nThis is an automatic reply; there is no need to "
            "answer it.\n\nMarTech Hub"
        ) % {"url": settings.SITE_URL}
        title = _("Your message was not accepted: %(subject)s") % {"subject": subject or _("(no subject)")}
    headers = {
        "Auto-Submitted": "auto-replied",
        "X-Auto-Response-Suppress": "All",
        "Message-ID": make_msgid(domain=settings.EMAIL_MESSAGE_ID_DOMAIN),
    }
    if in_reply_to and not in_reply_to.startswith("sha256:"):
        headers["In-Reply-To"] = f"<{in_reply_to}>"
        headers["References"] = f"<{in_reply_to}>"
    EmailMessage(subject=f"[MarTech Hub] {title}"[:900], body=body, to=[to], headers=headers).send(
        fail_silently=False
    )
