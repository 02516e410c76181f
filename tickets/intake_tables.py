"""Tables of the e-mail intake (tickets/intake_email/): every inbound mail handled, by its Message-ID.

Re-imported at the end of tickets/models.py, so they belong to the tickets app and its migrations.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class InboundMail(models.Model):
    """One inbound mail, once: the same Message-ID again returns what it did the first time (an MTA that
    retries a pipe, an IMAP poll that died before marking a message read). Its Message-ID also threads a
    later reply (`References`) onto the ticket it opened or commented on."""

    class Outcome(models.TextChoices):
        TICKET = "ticket", _("Opened a request")
        COMMENT = "comment", _("Added a reply")
        IGNORED = "ignored", _("Ignored")
        REJECTED = "rejected", _("Rejected")

    # Normalised (no angle brackets, lower case); `sha256:<hex>` when longer, or when the mail had none.
    message_id = models.CharField(_("Message-ID"), max_length=255, unique=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket",
        verbose_name=_("request"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_mails",
    )
    comment = models.ForeignKey(
        "tickets.Comment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("inbound e-mail")
        verbose_name_plural = _("inbound e-mails")

    def __str__(self) -> str:
        return f"{self.message_id} → {self.outcome}"
