"""Read one RFC 822 message on stdin and hand it to the e-mail intake (an MTA pipe, as RT's mail gateway):

    manage.py inbound_email < message.eml

Prints the ticket's key (the one opened, or the one replied to), `ignored: <reason>` for auto-replies and
bounces, or `rejected: unknown sender`; exit 0 in all those cases. A failure to handle the mail (database
down, say) exits 75 (EX_TEMPFAIL), so the MTA keeps the message and retries.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tickets.intake_email import InboundEmailUnavailable, email_receive

EX_NOINPUT, EX_TEMPFAIL = 66, 75
log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Turn one e-mail read on stdin into a ticket or a reply on one; prints the ticket key."
    stealth_options = ("stdin",)

    def handle(self, *args: Any, **options: Any) -> None:
        stream = options.get("stdin") or sys.stdin.buffer
        raw = stream.read()
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        if not raw.strip():
            raise CommandError("no message on stdin", returncode=EX_NOINPUT)
        try:
            outcome = email_receive(raw)
        except InboundEmailUnavailable as exc:
            raise CommandError(str(exc), returncode=EX_TEMPFAIL) from exc
        except Exception as exc:  # the MTA must keep the mail: a temporary failure, never a bounce
            log.exception("inbound mail failed")
            raise CommandError(
                f"the mail could not be handled ({type(exc).__name__}); try again later",
                returncode=EX_TEMPFAIL,
            ) from exc
        self.stdout.write(outcome.line())
