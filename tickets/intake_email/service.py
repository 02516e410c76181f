"""An inbound mail becomes a ticket, a public reply on one, an ignored machine mail, or a polite refusal.

Every write goes through the ticket services (`ticket_create`, `comment_add`), so keys, SLA clocks,
permissions, upload checks, notifications and the audit trail are those of any other ticket. Each mail is
handled once per Message-ID (`InboundMail`), under a transaction-scoped advisory lock on that id, so an MTA
retry or two pollers at once still make one ticket.

Logs carry a short hash of the Message-ID and the outcome, never the sender's address or the text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import Team, User
from config.task_queue import enqueue
from tickets import permissions
from tickets.intake_email.parsing import MailFile, ParsedMail, parse_message
from tickets.intake_email.reply_threading import ticket_for_reply
from tickets.intake_email.sanitising import strip_quoted_reply
from tickets.intake_tables import InboundMail
from tickets.models import Comment, Ticket
from tickets.services.conversation import comment_add
from tickets.services.intake import attachments_validate, ticket_create

log = logging.getLogger(__name__)

SYSTEM_USERNAME = "email-intake"
REJECT, TRIAGE = "reject", "triage"
_LOCK_CLASS = 0x454D  # "EM": pg_advisory_xact_lock(class, hashtext(message id))
_REPLY_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|回复|回覆|答复|转发|轉寄|转寄)\s*(\[\d+\])?\s*[:：]\s*)+", re.I
)
# One refusal per address per window: a mail robot that sets none of the auto-reply headers cannot loop.
_REJECTION_WINDOW_SECONDS = 3600


class InboundEmailUnavailable(Exception):
    """The triage team named by INBOUND_TRIAGE_TEAM does not exist."""


@dataclass(frozen=True)
class MailOutcome:
    action: str  # InboundMail.Outcome: ticket | comment | ignored | rejected
    key: str = ""
    reason: str = ""
    duplicate: bool = False

    def line(self) -> str:
        """What the pipe command prints: the ticket key, or `ignored: <reason>` / `rejected: <reason>`."""
        if self.action in (InboundMail.Outcome.TICKET, InboundMail.Outcome.COMMENT):
            return self.key
        return f"{self.action}: {self.reason}"


def _short_id(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:12]


def _lock_message_id(message_id: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_CLASS, message_id])


def _triage_team() -> Team:
    team = Team.objects.filter(name=settings.INBOUND_TRIAGE_TEAM).first()
    if team is None:
        raise InboundEmailUnavailable(f"INBOUND_TRIAGE_TEAM names no team ({settings.INBOUND_TRIAGE_TEAM!r})")
    return team


def email_system_user(team: Team) -> User:
    """The requester of tickets from unknown senders: created on first use, inactive, no usable password,
    a member of the triage team (moved along when the setting names another team)."""
    user = User.objects.filter(username=SYSTEM_USERNAME).first()
    if user is None:
        user = User(username=SYSTEM_USERNAME, is_active=False, team=team, display_name="E-mail")
        user.set_unusable_password()
        user.save()
    elif user.team_id != team.pk:
        user.team = team
        user.save(update_fields=["team"])
    return user


def _known_sender(address: str) -> User | None:
    if not address:
        return None
    return User.objects.filter(is_active=True, email__iexact=address).order_by("pk").first()


def _checked_files(files: list[MailFile]) -> tuple[list[SimpleUploadedFile], list[str]]:
    """Each file through the upload checks of the web form, one by one: a refused file is left out and
    named with its reason in the text, the rest of the mail still arrives."""
    accepted, refused = [], []
    for mail_file in files:
        upload = SimpleUploadedFile(mail_file.name, mail_file.content, content_type=mail_file.content_type)
        try:
            attachments_validate([upload])
        except ValidationError as exc:
            refused.append(
                _("Attachment %(name)s was not accepted: %(reason)s")
                % {"name": mail_file.name, "reason": " ".join(exc.messages)}
            )
            continue
        upload.seek(0)
        accepted.append(upload)
    return accepted, refused


def _with_notes(body: str, notes: list[str]) -> str:
    return "\n\n".join([body, *(f"*{note}*" for note in notes)]).strip() if notes else body


def _title(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject).strip()[:200] or _("(no subject)")


def _comment(mail: ParsedMail, ticket: Ticket, sender: User) -> tuple[MailOutcome, Comment | None]:
    files, refused = _checked_files(mail.files)
    body = _with_notes(strip_quoted_reply(mail.body), refused)
    if not body:
        if not files:
            return MailOutcome(InboundMail.Outcome.IGNORED, ticket.key, "empty reply"), None
        body = _("(files attached)")
    comment = comment_add(ticket=ticket, by=sender, body=body, files=files)
    return MailOutcome(InboundMail.Outcome.COMMENT, ticket.key), comment


def _open_ticket(mail: ParsedMail, requester: User, team: Team | None, description: str) -> MailOutcome:
    files, refused = _checked_files(mail.files)
    ticket = ticket_create(
        requester=requester,
        title=_title(mail.subject),
        description=_with_notes(description, refused),
        type=Ticket.Type.CONSULTATION,
        urgency=Ticket.Urgency.ROUTINE,
        channel=Ticket.Channel.EMAIL,
        files=files,
        team=team,
    )
    return MailOutcome(InboundMail.Outcome.TICKET, ticket.key)


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()<>#!|])", r"\\\1", text)


def _unknown_sender(mail: ParsedMail) -> MailOutcome:
    if settings.INBOUND_UNKNOWN_SENDER == TRIAGE:
        team = _triage_team()
        who = f"{mail.sender_name} <{mail.sender}>" if mail.sender_name else mail.sender
        heading = _("From an unknown sender: %(sender)s") % {"sender": _md_escape(who)}
        return _open_ticket(mail, email_system_user(team), team, f"**{heading}**\n\n{mail.body}".strip())
    if cache.add(f"inbound-email:refused:{_short_id(mail.sender)}", 1, _REJECTION_WINDOW_SECONDS):
        enqueue("tickets.tasks.send_inbound_refusal", mail.sender, mail.subject, mail.message_id)
    return MailOutcome(InboundMail.Outcome.REJECTED, reason="unknown sender")


def _handle(mail: ParsedMail) -> tuple[MailOutcome, Comment | None]:
    if mail.auto_reason:
        return MailOutcome(InboundMail.Outcome.IGNORED, reason=mail.auto_reason), None
    sender = _known_sender(mail.sender)
    ticket, _how = ticket_for_reply(mail)
    if ticket is not None and sender is not None and permissions.can_view(sender, ticket):
        return _comment(mail, ticket, sender)
    if sender is None:
        return _unknown_sender(mail), None
    team = None if sender.team_id else _triage_team()
    return _open_ticket(mail, sender, team, mail.body), None


def email_receive(raw: bytes) -> MailOutcome:
    """Handle one raw RFC 822 message, once per Message-ID (a repeat returns the first outcome, marked
    duplicate). Texts the intake writes are in the site's language (LANGUAGE_CODE)."""
    mail = parse_message(raw)
    with transaction.atomic():
        _lock_message_id(mail.message_id)
        earlier = InboundMail.objects.filter(message_id=mail.message_id).select_related("ticket").first()
        if earlier is not None:
            outcome = MailOutcome(
                earlier.outcome, earlier.ticket.key if earlier.ticket else "", earlier.reason, duplicate=True
            )
        else:
            with translation.override(settings.LANGUAGE_CODE):
                outcome, comment = _handle(mail)
            InboundMail.objects.create(
                message_id=mail.message_id,
                outcome=outcome.action,
                reason=outcome.reason[:200],
                ticket=Ticket.objects.filter(key=outcome.key).first() if outcome.key else None,
                comment=comment,
            )
    log.info(
        "inbound mail %s: %s %s%s",
        _short_id(mail.message_id),
        outcome.action,
        outcome.key or outcome.reason,
        " (duplicate)" if outcome.duplicate else "",
    )
    return outcome
