"""Polling an IMAP mailbox (INBOUND_IMAP_URL, e.g. `imaps://user:pass@host:993/INBOX`) with the standard
library's imaplib.

Unread messages are fetched without marking them (`BODY.PEEK[]`), handled one by one, and only then marked
`\\Seen`, or moved to INBOUND_IMAP_MOVE_TO when set. A message that fails stays unread and is tried again
at the next poll; the others go on. A message handled twice (the poll died between the two steps) is
recognised by its Message-ID and makes nothing new.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings

from tickets.intake_email.service import email_receive

log = logging.getLogger(__name__)


class ImapUrlInvalid(ValueError):
    pass


@dataclass(frozen=True)
class ImapMailbox:
    secure: bool
    host: str
    port: int
    user: str
    password: str
    mailbox: str


def mailbox_from_url(url: str) -> ImapMailbox:
    """`imap://` or `imaps://user:password@host[:port][/mailbox]`; user and password %-encoded."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise ImapUrlInvalid("INBOUND_IMAP_URL: the scheme must be imap:// or imaps://")
    if not parts.hostname or not parts.username:
        raise ImapUrlInvalid(
            "INBOUND_IMAP_URL: a user and a host are required (imaps://user:pass@host/INBOX)"
        )
    secure = parts.scheme == "imaps"
    return ImapMailbox(
        secure=secure,
        host=parts.hostname,
        port=parts.port or (993 if secure else 143),
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
    )


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _connect(box: ImapMailbox) -> imaplib.IMAP4:
    timeout = settings.INBOUND_IMAP_TIMEOUT_SECONDS
    if box.secure:
        return imaplib.IMAP4_SSL(
            box.host, box.port, ssl_context=ssl.create_default_context(), timeout=timeout
        )
    return imaplib.IMAP4(box.host, box.port, timeout=timeout)


def _fetch(client: imaplib.IMAP4, uid: bytes) -> bytes:
    status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
    if status != "OK":
        raise imaplib.IMAP4.error(f"FETCH {uid!r}: {status}")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            return item[1]
    raise imaplib.IMAP4.error(f"FETCH {uid!r}: no message body")


def _mark_done(client: imaplib.IMAP4, uid: bytes, move_to: str) -> None:
    if not move_to:
        client.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
        return
    client.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
    if "MOVE" in client.capabilities:
        status, _data = client.uid("MOVE", uid, _quoted(move_to))
        if status == "OK":
            return
    status, _data = client.uid("COPY", uid, _quoted(move_to))
    if status == "OK":
        client.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
        client.expunge()


def imap_poll(*, url: str | None = None, batch: int | None = None) -> dict[str, int]:
    """Handle the mailbox's unread messages (at most `batch`); returns counts per outcome and `failed`."""
    box = mailbox_from_url(url or settings.INBOUND_IMAP_URL)
    limit = batch or settings.INBOUND_IMAP_BATCH
    counts: dict[str, int] = {"failed": 0}
    client = _connect(box)
    try:
        client.login(box.user, box.password)
        status, _data = client.select(_quoted(box.mailbox))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open mailbox {box.mailbox!r}")
        status, data = client.uid("SEARCH", None, "UNSEEN")
        uids = (data[0] or b"").split()[:limit] if status == "OK" and data else []
        for uid in uids:
            try:
                outcome = email_receive(_fetch(client, uid))
            except Exception as exc:  # one bad message must not stop the others; it stays unread
                counts["failed"] += 1
                log.warning(
                    "inbound IMAP message uid %s failed (%s); left unread", uid.decode(), type(exc).__name__
                )
                log.debug("inbound IMAP message failure", exc_info=True)
                continue
            _mark_done(client, uid, settings.INBOUND_IMAP_MOVE_TO)
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    log.info("inbound IMAP poll: %s", counts)
    return counts
