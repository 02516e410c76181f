"""Which ticket a reply belongs to: the Message-IDs it answers (ours, or an inbound mail we handled), then
a ticket key in its subject."""

from __future__ import annotations

import re

from django.conf import settings

from tickets.intake_email.parsing import ParsedMail
from tickets.intake_tables import InboundMail
from tickets.models import Ticket

# accounts.tasks.notification_mail_headers writes `<notification-<id>.<KEY>@<domain>>` on every mail it sends.
_OUR_MESSAGE_ID = re.compile(r"^notification-\d+\.([a-z][a-z0-9]*-\d+)@(.+)$", re.IGNORECASE)
# A key in a subject: "Re: [MarTech Hub] New reply on MT-1042", "回复：MT-1042 优惠券"
_SUBJECT_KEY = re.compile(r"(?<![A-Za-z0-9-])(MT-\d{1,9})(?!\d)", re.IGNORECASE)


def _keys_from_our_ids(ids: list[str]) -> list[str]:
    domain = settings.EMAIL_MESSAGE_ID_DOMAIN.lower()
    return [m.group(1).upper() for m in (_OUR_MESSAGE_ID.match(i) for i in ids) if m and m.group(2) == domain]


def ticket_for_reply(mail: ParsedMail) -> tuple[Ticket | None, str]:
    """The ticket the mail answers and how it was found ("in-reply-to", "references", "subject"), or
    (None, ""). The newest reference wins: In-Reply-To, then References from last to first."""
    answered = [*mail.in_reply_to, *reversed(mail.references)]
    for how, ids in (("in-reply-to", mail.in_reply_to), ("references", answered)):
        for key in _keys_from_our_ids(ids):
            ticket = Ticket.objects.filter(key=key).first()
            if ticket is not None:
                return ticket, how
        if ids:
            earlier = (
                InboundMail.objects.filter(message_id__in=ids, ticket__isnull=False)
                .select_related("ticket")
                .order_by("-received_at", "-id")
                .first()
            )
            if earlier is not None:
                return earlier.ticket, how
    match = _SUBJECT_KEY.search(mail.subject)
    if match:
        ticket = Ticket.objects.filter(key=match.group(1).upper()).first()
        if ticket is not None:
            return ticket, "subject"
    return None, ""
