"""A ticket's history as the viewer reads it: each event's kind, and its change through the shared
humaniser (accounts.audit_display): field labels, choice labels, local times, masked personal values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy

from accounts import audit_display
from accounts.audit_display import ChangeRow
from privacy import personal_data
from privacy.personal_data import Viewer
from tickets.models import SolutionPlan, Ticket, TicketEvent, TicketLink

Kind = TicketEvent.Kind

# What an event's `field` names when it is not a ticket field: unbound fields carry label and choices.
EXTRA_FIELDS: dict[str, models.Field] = {
    "plan": models.CharField(gettext_lazy("solution plan"), choices=SolutionPlan.Status.choices),
    "rating": models.PositiveSmallIntegerField(gettext_lazy("rating")),
    **{kind: models.CharField(label) for kind, label in TicketLink.Kind.choices},
}
# Events recorded without a field: what their value is (its label is the event's kind).
VALUE_FIELDS: dict[str, str] = {Kind.CREATED: "status", Kind.RETROSPECTIVE: "retrospective"}
VALUE_ONLY_FIELDS: dict[str, models.Field] = {
    "retrospective": models.CharField(
        "", choices=[("created", gettext_lazy("Created")), ("updated", gettext_lazy("Updated"))]
    ),
}
# Notes the system writes in English at the time of the event.
SYSTEM_NOTES = {"resolved without a reply": gettext_lazy("Resolved without a reply")}


@dataclass(frozen=True)
class HistoryRow:
    event: TicketEvent
    kind_label: str
    change: ChangeRow | None
    note: str


def _note(event: TicketEvent, *, viewer: Viewer) -> str:
    if event.kind == Kind.CREATED and event.note:
        channels = dict(Ticket.Channel.choices)
        return str(channels.get(event.note, event.note))
    if event.note in SYSTEM_NOTES:
        return str(SYSTEM_NOTES[event.note])
    return personal_data.text_for(event.note, viewer=viewer)


def _change(event: TicketEvent, *, viewer: Viewer) -> ChangeRow | None:
    if not (event.old or event.new):
        return None
    name = event.field or VALUE_FIELDS.get(event.kind, "")
    fields = {**EXTRA_FIELDS, **VALUE_ONLY_FIELDS}
    row = audit_display.change_rows(Ticket, {name: [event.old, event.new]}, viewer=viewer, fields=fields)[0]
    if not event.field:  # the kind already says what changed
        return ChangeRow(field=row.field, label="", old=row.old, new=row.new)
    return row


def history_rows(events: Iterable[TicketEvent], *, viewer: Viewer) -> list[HistoryRow]:
    """Rows for the history tab, oldest first as given."""
    kinds = dict(Kind.choices)
    return [
        HistoryRow(
            event=event,
            kind_label=str(kinds.get(event.kind, event.kind)),
            change=_change(event, viewer=viewer),
            note=_note(event, viewer=viewer),
        )
        for event in events
    ]
