"""Optimistic concurrency for edits: no lost update when two people edit the same object.

A page or API client reads an object's version token (from `updated_at`), sends it back with the edit
(a hidden `version` form field or the `If-Match` header), and the service compares it with the locked
row. A stale token raises `EditConflict`: pages show the message, the API answers 409.
"""

from typing import Any

from django.utils.translation import gettext as _


class EditConflict(Exception):
    """Someone else saved the object after the editor loaded it."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or _(
                "Someone else changed this after you opened it. Reload to see their changes, then edit again."
            )
        )


def version_token(obj: Any) -> str:
    """An opaque token that changes on every save (microseconds of `updated_at`)."""
    stamp = getattr(obj, "updated_at", None)
    return str(int(stamp.timestamp() * 1_000_000)) if stamp else ""


def check_version(obj: Any, expected: str | None) -> None:
    """Raise EditConflict when an expected token was given and the (locked) object has moved on."""
    if expected and expected.strip('"') != version_token(obj):
        raise EditConflict()


def expected_version(request: Any) -> str | None:
    """The token a client sent: the `If-Match` header (API) or the `version` form field (pages)."""
    header = request.headers.get("If-Match")
    if header:
        return header.strip().strip('"')
    data = getattr(request, "POST", None) or {}
    return data.get("version") or None
