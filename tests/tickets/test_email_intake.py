"""E-mail intake (issue 21), behaviours around the corpus: unknown senders under both settings, the polite
refusal and its loop guards, de-duplication, threading through a real notification's Message-ID, who may
comment, the waiting clock, the logs, the settings."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.models import Notification
from accounts.tasks import send_notification_emails
from tests.tickets.email_intake_support import OUR_DOMAIN, corpus_mail, intake_settings
from tests.tickets.factories import force_status, make_ticket
from tickets import services
from tickets.intake_email import email_receive
from tickets.intake_email.imap import ImapUrlInvalid, mailbox_from_url
from tickets.intake_email.service import SYSTEM_USERNAME
from tickets.intake_tables import InboundMail
from tickets.models import Comment, Ticket

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def base(settings, requester, agent, manager, support_team) -> Ticket:
    intake_settings(settings, support_team.name)
    return make_ticket(requester)


def _mail(sender: str, subject: str, body: str, message_id: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: support@{OUR_DOMAIN}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
        f"{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def test_unknown_sender_in_triage_mode_opens_a_ticket_for_the_triage_team(base, settings, support_team):
    settings.INBOUND_UNKNOWN_SENDER = "triage"

    outcome = email_receive(corpus_mail("34_unknown_sender.eml"))

    ticket = Ticket.objects.get(key=outcome.key)
    assert outcome.action == "ticket"
    assert (ticket.team, ticket.requester.username, ticket.channel) == (
        support_team,
        SYSTEM_USERNAME,
        "email",
    )
    assert not ticket.requester.is_active and not ticket.requester.has_usable_password()
    assert ticket.title == "合作咨询"
    assert "From an unknown sender: Stranger \\<stranger@outside.example\\>" in ticket.description
    assert "你们好，想咨询合作。" in ticket.description


def test_unknown_sender_in_reject_mode_gets_one_polite_refusal(
    base, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        outcome = email_receive(corpus_mail("34_unknown_sender.eml"))

    assert outcome.line() == "rejected: unknown sender"
    assert Ticket.objects.count() == 1  # only the base ticket
    [refusal] = mailoutbox
    assert refusal.to == ["stranger@outside.example"]
    assert refusal.subject == "[MarTech Hub] Your message was not accepted: 合作咨询"
    assert "only accepts requests from people with an account" in refusal.body
    assert refusal.extra_headers["Auto-Submitted"] == "auto-replied"
    assert refusal.extra_headers["In-Reply-To"] == "<stranger-1@outside.example>"


def test_a_second_mail_from_the_same_unknown_sender_is_not_answered_again(
    base, mailoutbox, django_capture_on_commit_callbacks
):
    """A robot that sets no auto-reply header still cannot ping-pong with the refusal."""
    with django_capture_on_commit_callbacks(execute=True):
        email_receive(corpus_mail("34_unknown_sender.eml"))
        again = email_receive(
            _mail("Stranger <stranger@outside.example>", "Re: refused", "Why?", "stranger-2@outside.example")
        )

    assert again.action == "rejected"
    assert len(mailoutbox) == 1


def test_an_auto_reply_from_an_unknown_sender_is_never_answered(
    base, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        outcome = email_receive(corpus_mail("35_unknown_sender_auto_reply.eml"))

    assert outcome.line() == "ignored: auto-submitted (auto-replied)"
    assert mailoutbox == []


def test_the_same_mail_twice_makes_one_ticket(base):
    first = email_receive(corpus_mail("01_plain_utf8.eml"))
    second = email_receive(corpus_mail("01_plain_utf8.eml"))

    assert (first.action, second.action, second.key) == ("ticket", "ticket", first.key)
    assert (first.duplicate, second.duplicate) == (False, True)
    assert Ticket.objects.filter(channel="email").count() == 1
    assert InboundMail.objects.filter(message_id="start-of-thread@mail.example.com").count() == 1


def test_a_mail_without_message_id_is_deduplicated_by_its_bytes(base):
    raw = b"From: req@example.com\r\nSubject: No id\r\nContent-Type: text/plain\r\n\r\nHello\r\n"

    first, second = email_receive(raw), email_receive(raw)

    assert second.duplicate and second.key == first.key
    assert Ticket.objects.filter(title="No id").count() == 1


def test_a_reply_to_a_real_notification_mail_threads_onto_its_ticket(
    base, agent, requester, mailoutbox, django_capture_on_commit_callbacks
):
    # given: the agent replies on the web, the requester is told by e-mail
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_add(ticket=base, by=agent, body="Fixed, please check.")
    notification = Notification.objects.get(recipient=requester, kind="ticket.reply")
    send_notification_emails([notification.pk])
    sent = mailoutbox[-1].message()
    message_id = sent["Message-ID"]
    assert message_id == f"<notification-{notification.pk}.{base.key}@{OUR_DOMAIN}>"
    assert sent["Auto-Submitted"] == "auto-generated"

    # when: the requester answers it from a mail program (no key in the subject)
    outcome = email_receive(
        _mail(
            "req@example.com",
            "Re: your mail",
            "Works now, thanks!",
            "answer-1@mail.example.com",
            extra=f"In-Reply-To: {message_id}\r\nReferences: {message_id}\r\n",
        )
    )

    # then
    assert (outcome.action, outcome.key) == ("comment", base.key)
    comment = Comment.objects.get(ticket=base, author=requester)
    assert comment.body == "Works now, thanks!" and not comment.internal


def test_a_message_id_of_another_domain_does_not_thread(base):
    outcome = email_receive(
        _mail(
            "req@example.com",
            "Re: hello",
            "Text",
            "x-1@mail.example.com",
            extra=f"In-Reply-To: <notification-1.{base.key}@elsewhere.example>\r\n",
        )
    )

    assert outcome.action == "ticket" and outcome.key != base.key


def test_someone_who_cannot_see_the_ticket_opens_a_new_one_instead_of_commenting(base, other_requester):
    """brand@example.com is in another team: a key in the subject gives no way onto MT-1001."""
    outcome = email_receive(
        _mail("brand@example.com", f"Re: {base.key}", "Me too", "brand-1@mail.example.com")
    )

    assert outcome.action == "ticket" and outcome.key != base.key
    assert not Comment.objects.filter(ticket=base).exists()
    assert Ticket.objects.get(key=outcome.key).requester == other_requester


def test_a_reply_puts_a_ticket_waiting_on_the_requester_back_to_work(base):
    force_status(base, Ticket.Status.WAITING_ON_REQUESTER, previous=Ticket.Status.IN_PROGRESS)

    outcome = email_receive(corpus_mail("18_reply_in_reply_to.eml", key=base.key))

    base.refresh_from_db()
    assert outcome.action == "comment"
    assert base.status == Ticket.Status.IN_PROGRESS


def test_an_auto_reply_to_a_notification_leaves_the_ticket_alone(base):
    force_status(base, Ticket.Status.WAITING_ON_REQUESTER, previous=Ticket.Status.IN_PROGRESS)

    outcome = email_receive(corpus_mail("25_auto_reply_ooo.eml", key=base.key))

    base.refresh_from_db()
    assert outcome.action == "ignored"
    assert base.status == Ticket.Status.WAITING_ON_REQUESTER
    assert not Comment.objects.exists()


def test_an_empty_reply_is_ignored(base):
    outcome = email_receive(_mail("req@example.com", f"Re: {base.key}", "", "empty-reply@mail.example.com"))

    assert outcome.line() == "ignored: empty reply"
    assert not Comment.objects.exists()


def test_a_sender_without_a_team_files_into_the_triage_team(base, requester, support_team):
    requester.team = None
    requester.save(update_fields=["team"])

    outcome = email_receive(_mail("req@example.com", "Teamless", "Body", "teamless@mail.example.com"))

    ticket = Ticket.objects.get(key=outcome.key)
    assert (ticket.requester, ticket.team) == (requester, support_team)


def test_logs_never_show_the_sender_or_the_text(base, caplog):
    """The intake's own log lines: a hash of the Message-ID and the outcome; no address, phone or text."""
    planted = "请回电 13812345678，邮箱 vip.customer@shop.example"
    with caplog.at_level(logging.DEBUG, logger="tickets"):
        email_receive(_mail("req@example.com", "Call back", planted, "pii-1@mail.example.com"))
        email_receive(corpus_mail("34_unknown_sender.eml"))

    intake_lines = [r.getMessage() for r in caplog.records if r.name.startswith("tickets.intake_email")]
    assert len(intake_lines) == 2
    text = "\n".join(intake_lines)
    for secret in ("req@example.com", "stranger@outside.example", "13812345678", "vip.customer", "请回电"):
        assert secret not in text


def test_imap_url_is_read_with_its_parts():
    box = mailbox_from_url("imaps://support%40hub.example.com:p%40ss@mail.example.com/Support%20In")

    assert (box.secure, box.host, box.port) == (True, "mail.example.com", 993)
    assert (box.user, box.password, box.mailbox) == ("support@hub.example.com", "p@ss", "Support In")
    assert mailbox_from_url("imap://u:p@127.0.0.1:1143").mailbox == "INBOX"


@pytest.mark.parametrize("url", ["https://u:p@host/INBOX", "imaps://host/INBOX", "imap:///INBOX"])
def test_a_bad_imap_url_names_the_setting(url):
    with pytest.raises(ImapUrlInvalid, match="INBOUND_IMAP_URL"):
        mailbox_from_url(url)


def _beat_schedule_with(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "INBOUND_IMAP_URL"} | env_extra
    code = (
        "from django.conf import settings; print(settings.CELERY_BEAT_SCHEDULE.get('tickets-inbound-imap'))"
    )
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_the_imap_poll_is_in_beat_only_when_a_mailbox_is_set():
    assert _beat_schedule_with({}) == "None"
    line = _beat_schedule_with(
        {"INBOUND_IMAP_URL": "imaps://u:p@mail.example.com/INBOX", "INBOUND_IMAP_POLL_SECONDS": "30"}
    )
    assert "tickets.tasks.poll_inbound_imap" in line and "30.0" in line
