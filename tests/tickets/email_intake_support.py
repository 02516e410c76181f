"""What the e-mail intake tests share: the corpus folder and the settings every test runs under."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).parent / "mail_corpus"
OUR_DOMAIN = "hub.example.com"


def corpus_mail(name: str, *, key: str = "MT-1001") -> bytes:
    """A corpus message; `MT-1001` (the key the corpus replies quote) replaced by the test's ticket key."""
    return (CORPUS / name).read_bytes().replace(b"MT-1001", key.encode())


def intake_settings(settings, team_name: str) -> None:
    settings.DEFAULT_FROM_EMAIL = f"MarTech Hub <support@{OUR_DOMAIN}>"
    settings.EMAIL_MESSAGE_ID_DOMAIN = OUR_DOMAIN
    settings.INBOUND_UNKNOWN_SENDER = "reject"
    settings.INBOUND_TRIAGE_TEAM = team_name
    settings.INBOUND_EMAIL_OWN_ADDRESSES = []
    # the corpus's "huge" attachment is 150 kB: over this limit, the others are far under it
    settings.UPLOAD_MAX_BYTES = 100_000
