"""Why a ticket write is refused: each exception maps to one HTTP status."""

from __future__ import annotations


class TransitionError(Exception):
    """A status change that cannot happen; subclasses say why (409 / 403 / 400)."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class TransitionNotAllowed(TransitionError):
    """No such step from the current status (HTTP 409)."""


class TransitionForbidden(TransitionError):
    """The step exists, but this person's role may not take it (HTTP 403)."""


class TransitionDataMissing(TransitionError):
    """The step needs data that is missing or wrong (HTTP 400); `errors` maps field → message."""


class TicketConflict(Exception):
    """The change conflicts with the ticket's current state (HTTP 409)."""
