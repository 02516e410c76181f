"""E-mail intake: an inbound mail becomes a ticket or a public reply on one (docs/tickets.md, "E-mail intake").

parsing / decoding   the message taken apart, Chinese and other charsets read right
sanitising           HTML to Markdown, quoted history cut from replies
reply_threading      which ticket a reply answers
service              the one entry point, `email_receive(raw)`, once per Message-ID
imap                 polling a mailbox; replies: the refusal to unknown senders
"""

from tickets.intake_email.service import InboundEmailUnavailable, MailOutcome, email_receive

__all__ = ["InboundEmailUnavailable", "MailOutcome", "email_receive"]
