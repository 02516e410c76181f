"""Uploads: oversize, a type disguised by its extension, path tricks in names."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from config.uploads import random_storage_name, safe_display_name, validate_upload
from tickets.models import Ticket

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64


def test_oversize_file_is_refused(settings):
    settings.UPLOAD_MAX_BYTES = 1000
    with pytest.raises(ValidationError, match="limit"):
        validate_upload(SimpleUploadedFile("big.txt", b"a" * 1001))


@pytest.mark.parametrize(
    ("name", "content"), [("invoice.pdf", EXE), ("photo.png", EXE), ("notes.txt", PNG), ("run.exe", PNG)]
)
def test_content_that_does_not_match_its_extension_is_refused(name, content):
    with pytest.raises(ValidationError):
        validate_upload(SimpleUploadedFile(name, content))


def test_matching_content_is_accepted():
    assert validate_upload(SimpleUploadedFile("photo.png", PNG)) == "image/png"
    assert validate_upload(SimpleUploadedFile("notes.txt", "中文说明".encode())) == "text/plain"


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "..\\..\\windows\\win.ini", "/abs/path/x.txt", "a\x00b.txt"]
)
def test_path_tricks_never_reach_the_stored_name(name):
    stored = random_storage_name("attachments", name)
    assert stored.startswith("attachments/") and ".." not in stored and "\\" not in stored
    assert stored.count("/") == 1
    assert "/" not in safe_display_name(name) and ".." not in safe_display_name(name)


@pytest.mark.django_db
def test_disguised_attachment_through_the_api_creates_nothing(client_for, requester, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    before = Ticket.objects.count()
    response = client_for(requester).post(
        "/requests/new/",
        {
            "title": "Banner broken",
            "description": "x",
            "type": "incident",
            "urgency": "urgent",
            "attachments": SimpleUploadedFile("../../evil.pdf", EXE),
        },
    )
    assert response.status_code in (200, 400, 422)
    assert Ticket.objects.count() == before
    assert not any(tmp_path.rglob("*"))
