"""IMAP polling (issue 21) against a real IMAP server: Debian's dovecot, started by the test on free
loopback ports under a temporary folder (its own configuration: plain login from a passwd-file, maildir;
plain IMAP on one port, IMAP over TLS on another with a certificate the test makes) and stopped afterwards.
Messages are delivered with IMAP APPEND, as a mail server would file them."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tickets.email_intake_support import corpus_mail, intake_settings
from tests.tickets.factories import make_ticket
from tickets import tasks
from tickets.intake_email import imap as imap_module
from tickets.models import Comment, Ticket

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(DOVECOT is None, reason="dovecot is not installed (apt-get install dovecot-imapd)"),
]
USER, PASSWORD = "support", "imap-secret"


@dataclass(frozen=True)
class Dovecot:
    port: int
    folder: Path
    tls_port: int = 0

    def url(self, mailbox: str = "INBOX") -> str:
        return f"imap://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{mailbox}"

    def tls_url(self, mailbox: str = "INBOX") -> str:
        return f"imaps://{USER}:{PASSWORD}@127.0.0.1:{self.tls_port}/{mailbox}"

    @property
    def certificate(self) -> Path:
        return self.folder / "cert.pem"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        return client


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accounts() -> tuple[str, str, str, int, int]:
    """login user, internal user and group, and the uid/gid mail is stored as. Dovecot refuses to run its
    login and mail processes as root: as root, its own Debian accounts; otherwise the current user."""
    if os.getuid() != 0:
        me = pwd.getpwuid(os.getuid())
        return me.pw_name, me.pw_name, grp.getgrgid(me.pw_gid).gr_name, me.pw_uid, me.pw_gid
    try:
        internal = pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")
    except KeyError:
        pytest.skip("running as root, and dovecot's own users (dovecot, dovenull) do not exist")
    return "dovenull", "dovecot", "dovecot", internal.pw_uid, internal.pw_gid


def _certificate(folder: Path) -> None:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem): the test trusts it as its own CA."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _config(folder: Path, port: int, tls_port: int) -> str:
    login_user, internal_user, group, uid, gid = _accounts()
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = martech-test-{port}
log_path = {folder}/dovecot.log
ssl = yes
ssl_cert = <{folder}/cert.pem
ssl_key = <{folder}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{folder}/mail/%u
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {group}
first_valid_uid = 1
last_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={folder}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


def _wait_until_listening(port: int, process: subprocess.Popen, log: Path, *, tls: bool = False) -> None:
    """Until the port greets with "* OK" (over TLS, trusting the test's certificate, with `tls`)."""
    context = ssl.create_default_context(cafile=str(log.parent / "cert.pem")) if tls else None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
                conn = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
                if conn.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)  # polling a condition (the port), not waiting a fixed time
    raise RuntimeError("dovecot did not start listening within 20 s")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    folder = Path(tempfile.mkdtemp(prefix="martech-dovecot-"))
    folder.chmod(0o755)  # as root, dovecot's own users must reach the mail folder
    port, tls_port = _free_port(), _free_port()
    _login, _internal, _group, uid, gid = _accounts()
    for sub in ("run", "state", "mail", "home"):
        (folder / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(folder / sub, uid, gid)
    (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:::::\n")
    _certificate(folder)
    (folder / "dovecot.conf").write_text(_config(folder, port, tls_port))
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(folder / "dovecot.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_listening(port, process, folder / "dovecot.log")
        _wait_until_listening(tls_port, process, folder / "dovecot.log", tls=True)
        yield Dovecot(port=port, folder=folder, tls_port=tls_port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def mailbox(dovecot) -> Iterator[Dovecot]:
    """An empty INBOX (and no Processed folder) for each test."""
    client = dovecot.client()
    _status, data = client.select("INBOX")
    if data[0] != b"0":
        client.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
        client.expunge()
    client.delete("Processed")
    client.logout()
    yield dovecot


def _deliver(box: Dovecot, *messages: bytes) -> None:
    client = box.client()
    for message in messages:
        status, _data = client.append("INBOX", None, None, message)
        assert status == "OK"
    client.logout()


def _unseen_and_count(box: Dovecot, folder: str = "INBOX") -> tuple[int, int]:
    client = box.client()
    status, data = client.select(folder)
    assert status == "OK"
    total = int(data[0])
    _status, unseen = client.search(None, "UNSEEN")
    client.logout()
    return len(unseen[0].split()), total


@pytest.fixture
def base(settings, requester, agent, manager, support_team, mailbox) -> Ticket:
    intake_settings(settings, support_team.name)
    settings.INBOUND_IMAP_URL = mailbox.url()
    settings.INBOUND_IMAP_MOVE_TO = ""
    return make_ticket(requester)


def test_the_polling_task_turns_unread_mail_into_tickets_and_replies(base, mailbox):
    # given: a new request, a reply to the base ticket, an out-of-office reply, the same mail twice
    _deliver(
        mailbox,
        corpus_mail("02_gbk_subject.eml"),
        corpus_mail("18_reply_in_reply_to.eml", key=base.key),
        corpus_mail("25_auto_reply_ooo.eml", key=base.key),
        corpus_mail("02_gbk_subject.eml"),
    )

    # when
    counts = tasks.poll_inbound_imap()

    # then
    assert counts == {"failed": 0, "ticket": 2, "comment": 1, "ignored": 1}
    new = Ticket.objects.get(channel="email")
    assert new.title == "会员积分报表导出"
    assert Comment.objects.get(ticket=base).body == "Thanks, the price is right now."
    assert _unseen_and_count(mailbox) == (0, 4)  # every message read, none lost
    assert tasks.poll_inbound_imap() == {"failed": 0}  # nothing handled twice


def test_a_failing_message_stays_unread_and_the_others_go_on(base, mailbox, monkeypatch):
    _deliver(
        mailbox,
        corpus_mail("02_gbk_subject.eml"),
        corpus_mail("05_big5.eml"),
        corpus_mail("08_multipart_alternative.eml"),
    )
    real = imap_module.email_receive

    def flaky(raw: bytes):
        if b"big5-01@mail.example.com" in raw:
            raise ConnectionError("database hiccup")
        return real(raw)

    monkeypatch.setattr(imap_module, "email_receive", flaky)
    assert tasks.poll_inbound_imap() == {"failed": 1, "ticket": 2}
    assert _unseen_and_count(mailbox) == (1, 3)

    monkeypatch.setattr(imap_module, "email_receive", real)
    assert tasks.poll_inbound_imap() == {"failed": 0, "ticket": 1}
    assert sorted(Ticket.objects.filter(channel="email").values_list("title", flat=True)) == sorted(
        ["会员积分报表导出", "活動頁面無法開啟", "落地页按钮颜色"]
    )
    assert _unseen_and_count(mailbox) == (0, 3)


def test_handled_messages_can_be_moved_to_another_folder(base, mailbox, settings):
    client = mailbox.client()
    assert client.create("Processed")[0] == "OK"
    client.logout()
    settings.INBOUND_IMAP_MOVE_TO = "Processed"
    _deliver(mailbox, corpus_mail("01_plain_utf8.eml"), corpus_mail("28_precedence_bulk.eml"))

    assert tasks.poll_inbound_imap() == {"failed": 0, "ticket": 1, "ignored": 1}

    assert _unseen_and_count(mailbox, "INBOX") == (0, 0)
    assert _unseen_and_count(mailbox, "Processed") == (0, 2)


def test_a_wrong_password_fails_the_poll_without_touching_mail(base, mailbox, settings):
    settings.INBOUND_IMAP_URL = mailbox.url().replace(PASSWORD, "wrong")
    _deliver(mailbox, corpus_mail("01_plain_utf8.eml"))

    with pytest.raises(imaplib.IMAP4.error):
        tasks.poll_inbound_imap()

    assert _unseen_and_count(mailbox) == (1, 1)
    assert not Ticket.objects.filter(channel="email").exists()


def test_imaps_polls_over_tls_with_a_certificate_the_system_trusts(base, mailbox, settings, monkeypatch):
    # the server's certificate is trusted the way a deployment trusts its CA: OpenSSL's SSL_CERT_FILE
    monkeypatch.setenv("SSL_CERT_FILE", str(mailbox.certificate))
    settings.INBOUND_IMAP_URL = mailbox.tls_url()
    _deliver(mailbox, corpus_mail("01_plain_utf8.eml"))

    assert tasks.poll_inbound_imap() == {"failed": 0, "ticket": 1}
    assert _unseen_and_count(mailbox) == (0, 1)


def test_imaps_refuses_a_certificate_it_cannot_verify_and_touches_no_mail(
    base, mailbox, settings, monkeypatch
):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    settings.INBOUND_IMAP_URL = mailbox.tls_url()
    _deliver(mailbox, corpus_mail("01_plain_utf8.eml"))

    with pytest.raises(ssl.SSLCertVerificationError):
        tasks.poll_inbound_imap()

    assert _unseen_and_count(mailbox) == (1, 1)
    assert not Ticket.objects.filter(channel="email").exists()
