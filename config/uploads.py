"""Upload checks shared by every app: size, type by content (not by name), safe stored names."""

import os
import uuid
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from config.text import name_text

# Magic numbers of the types we accept, and the extensions each may carry.
SIGNATURES: list[tuple[bytes, str, set[str]]] = [
    (b"\x89PNG\r\n\x1a\n", "image/png", {".png"}),
    (b"\xff\xd8\xff", "image/jpeg", {".jpg", ".jpeg"}),
    (b"GIF87a", "image/gif", {".gif"}),
    (b"GIF89a", "image/gif", {".gif"}),
    (b"%PDF-", "application/pdf", {".pdf"}),
    (b"PK\x03\x04", "application/zip", {".zip", ".xlsx", ".docx", ".pptx"}),
]
TEXT_EXTENSIONS = {
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".log": "text/plain",
    ".json": "application/json",
}


def detect_content_type(upload: UploadedFile) -> str | None:
    """The type the bytes say, or None when they are of no accepted type."""
    upload.seek(0)
    head = upload.read(2048)
    upload.seek(0)
    for magic, content_type, _exts in SIGNATURES:
        if head.startswith(magic):
            return content_type
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # the 2 KB cut may split a multi-byte character; try shorter
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return None
    return "text/plain"


def validate_upload(upload: UploadedFile, max_bytes: int | None = None) -> str:
    """Check size and content against the name's extension; return the detected content type."""
    limit = max_bytes or settings.UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise ValidationError(
            _("%(name)s is %(size).1f MB; the limit is %(limit).0f MB.")
            % {"name": safe_display_name(upload.name), "size": upload.size / 1e6, "limit": limit / 1e6},
            code="too_large",
        )
    ext = os.path.splitext(upload.name or "")[1].lower()
    detected = detect_content_type(upload)
    if detected is None:
        raise ValidationError(_("This file type is not allowed."), code="bad_type")
    if detected == "text/plain":
        if ext not in TEXT_EXTENSIONS:
            raise ValidationError(
                _("The file's content does not match its name (%(ext)s).") % {"ext": ext or "-"},
                code="bad_type",
            )
        return TEXT_EXTENSIONS[ext]
    allowed = next(exts for magic, ctype, exts in SIGNATURES if ctype == detected)
    if ext not in allowed:
        raise ValidationError(
            _("The file's content does not match its name (%(ext)s).") % {"ext": ext or "-"}, code="bad_type"
        )
    return detected


def safe_display_name(name: str | None) -> str:
    """The file's base name with path parts, control and bidi characters removed (for display only)."""
    base = os.path.basename(name_text(name).replace("\\", "/"))
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip(". ")
    return cleaned[:200] or "file"


def random_storage_name(prefix: str, original: str) -> str:
    """A random stored name under `prefix/`, keeping only a known extension."""
    ext = os.path.splitext(safe_display_name(original))[1].lower()
    if not ext or len(ext) > 6 or not ext[1:].isalnum():
        ext = ""
    return f"{prefix}/{uuid.uuid4().hex}{ext}"


def orphan_files_delete(*, folder: str, kept: set[str], before: datetime, limit: int) -> int:
    """Delete at most `limit` files of a storage folder that no row names (`kept`) and that are older than
    `before` (left by a job that died, or by a row deleted without its file); returns how many."""
    try:
        _dirs, names = default_storage.listdir(folder)
    except FileNotFoundError:
        return 0
    deleted = 0
    for name in names:
        path = f"{folder}/{name}"
        if deleted < limit and path not in kept and default_storage.get_modified_time(path) < before:
            default_storage.delete(path)
            deleted += 1
    return deleted
