"""`manage.py inbound_email < message.eml` (issue 21's contract): exit 0 and the ticket key on stdout, the key
of the ticket commented on, or `ignored: <reason>`; once in-process and once as the MTA runs it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.tickets.email_intake_support import CORPUS, corpus_mail, intake_settings
from tests.tickets.factories import make_ticket
from tickets.intake_tables import InboundMail
from tickets.models import Comment, Ticket

ROOT = Path(__file__).resolve().parents[2]


def _run(raw: bytes) -> str:
    out = io.StringIO()
    call_command("inbound_email", stdin=io.BytesIO(raw), stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def base(settings, requester, agent, manager, support_team) -> Ticket:
    intake_settings(settings, support_team.name)
    return make_ticket(requester)


@pytest.mark.django_db
def test_a_new_mail_prints_the_new_tickets_key(base):
    printed = _run(corpus_mail("02_gbk_subject.eml"))

    ticket = Ticket.objects.get(channel="email")
    assert printed == ticket.key
    assert ticket.title == "会员积分报表导出"


@pytest.mark.django_db
def test_a_reply_prints_the_key_of_the_ticket_commented_on(base):
    printed = _run(corpus_mail("18_reply_in_reply_to.eml", key=base.key))

    assert printed == base.key
    assert Comment.objects.filter(ticket=base).count() == 1


@pytest.mark.django_db
def test_an_auto_reply_prints_ignored_with_the_reason(base):
    assert (
        _run(corpus_mail("25_auto_reply_ooo.eml", key=base.key)) == "ignored: auto-submitted (auto-replied)"
    )
    assert _run(corpus_mail("23_bounce_dsn.eml", key=base.key)) == "ignored: delivery status notification"
    assert not Comment.objects.exists()


@pytest.mark.django_db
def test_nothing_on_stdin_is_an_error_for_the_mta(base):
    with pytest.raises(CommandError, match="no message on stdin") as failure:
        call_command("inbound_email", stdin=io.BytesIO(b""))

    assert failure.value.returncode == 66


@pytest.mark.django_db
def test_a_failure_asks_the_mta_to_try_again(base, monkeypatch):
    def broken(raw: bytes) -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr("tickets.management.commands.inbound_email.email_receive", broken)
    with pytest.raises(CommandError, match="try again later") as failure:
        call_command("inbound_email", stdin=io.BytesIO(corpus_mail("01_plain_utf8.eml")))

    assert failure.value.returncode == 75


@pytest.mark.django_db(transaction=True)
def test_the_command_as_an_mta_pipe_runs_it(requester, agent, manager, support_team):
    """A real process reading the file on stdin, against this test database."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = os.environ | {
        "DATABASE_URL": url,
        "DEFAULT_FROM_EMAIL": "MarTech Hub <support@hub.example.com>",
        "EMAIL_MESSAGE_ID_DOMAIN": "hub.example.com",
        "INBOUND_TRIAGE_TEAM": support_team.name,
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
    }
    with open(CORPUS / "15_foxmail_gbk_attachment.eml", "rb") as message:
        result = subprocess.run(
            [sys.executable, "manage.py", "inbound_email"],
            stdin=message,
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
        )

    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    ticket = Ticket.objects.get(channel="email")
    assert result.stdout.decode().strip() == ticket.key
    assert ticket.title == "客户名单模板"
    assert [a.original_name for a in ticket.attachments.all()] == ["客户名单.xlsx"]


@pytest.mark.django_db
def test_a_missing_triage_team_keeps_the_mail_for_a_retry(base, settings):
    settings.INBOUND_UNKNOWN_SENDER = "triage"
    settings.INBOUND_TRIAGE_TEAM = "No such team"

    with pytest.raises(CommandError, match="INBOUND_TRIAGE_TEAM names no team") as failure:
        call_command("inbound_email", stdin=io.BytesIO(corpus_mail("34_unknown_sender.eml")))

    assert failure.value.returncode == 75
    assert Ticket.objects.count() == 1
    assert not InboundMail.objects.exists()  # handled again when the MTA retries
