"""Big-sale mode: during a declared event window (618, 双11) urgent and incident requests run round the clock on
the window's targets, and the on-call rota answers at every hour."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from tickets import permissions, sla
from tickets.models import BigSaleWindow, Ticket
from tickets.oncall.rota import company_zone

TARGET_FIELDS = (
    "urgent_first_response_minutes",
    "urgent_resolution_minutes",
    "incident_first_response_minutes",
    "incident_resolution_minutes",
)


def window_at(at: dt.datetime, windows: Sequence[BigSaleWindow] | None = None) -> BigSaleWindow | None:
    """The event window running at `at` (the one that began last when two overlap), or None. `windows`:
    all windows loaded once by a caller that asks for many tickets."""
    if windows is not None:
        running = [w for w in windows if w.starts_at <= at < w.ends_at]
        return max(running, key=lambda w: (w.starts_at, w.pk)) if running else None
    return (
        BigSaleWindow.objects.filter(starts_at__lte=at, ends_at__gt=at).order_by("-starts_at", "-id").first()
    )


def round_the_clock() -> sla.Calendar:
    """Every minute of every day, on the company's clock."""
    return sla.Calendar(tz=company_zone(), hours={day: ((sla.MIDNIGHT, sla.MIDNIGHT),) for day in range(7)})


def applies_to(ticket: Ticket) -> bool:
    return ticket.type == Ticket.Type.INCIDENT or ticket.urgency == Ticket.Urgency.URGENT


def event_targets(
    ticket: Ticket, targets: sla.Targets, windows: Sequence[BigSaleWindow] | None = None
) -> sla.Targets:
    """The ticket's targets: the window's (round the clock) when it is urgent or an incident and was filed
    during an event window; otherwise `targets` unchanged. Incident targets win for an urgent incident."""
    if ticket.created_at is None or not applies_to(ticket):
        return targets
    window = window_at(ticket.created_at, windows)
    if window is None:
        return targets
    if ticket.type == Ticket.Type.INCIDENT:
        first, resolution = window.incident_first_response_minutes, window.incident_resolution_minutes
    else:
        first, resolution = window.urgent_first_response_minutes, window.urgent_resolution_minutes
    return sla.Targets(
        calendar=round_the_clock(),
        first_response=dt.timedelta(minutes=first),
        resolution=dt.timedelta(minutes=resolution),
    )


def _check(values: dict) -> None:
    errors: dict[str, str] = {}
    if not str(values.get("name") or "").strip():
        errors["name"] = _("Name the event, e.g. 618.")
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is None:
        errors["starts_at"] = _("This field is required.")
    if ends is None:
        errors["ends_at"] = _("This field is required.")
    if starts is not None and ends is not None and ends <= starts:
        errors["ends_at"] = _("The window must end after it starts.")
    for name in TARGET_FIELDS:
        minutes = values.get(name)
        if minutes is None or minutes < 1 or minutes > sla.MAX_TARGET_MINUTES:
            errors[name] = _("Enter a number of minutes between 1 and 1,000,000.")
    if errors:
        raise DjangoValidationError(errors)


@transaction.atomic
def big_sale_save(*, by: User, window: BigSaleWindow | None = None, **values: object) -> BigSaleWindow:
    """A manager declares (or changes) an event window; tickets filed during it get its targets."""
    if not permissions.can_manage_big_sale(by):
        raise PermissionDenied(_("Only managers declare big-sale windows."))
    _check(values)
    old = (
        {}
        if window is None
        else {f: str(getattr(window, f)) for f in ("name", "starts_at", "ends_at", *TARGET_FIELDS)}
    )
    window = window or BigSaleWindow(created_by=by)
    for name, value in values.items():
        setattr(window, name, value.strip() if isinstance(value, str) else value)
    window.save()
    audit_record(
        actor=by,
        action="tickets.big_sale_save",
        obj=window,
        changes={
            "old": old,
            "new": {f: str(getattr(window, f)) for f in ("name", "starts_at", "ends_at", *TARGET_FIELDS)},
        },
    )
    return window


@transaction.atomic
def big_sale_delete(*, by: User, window: BigSaleWindow) -> None:
    if not permissions.can_manage_big_sale(by):
        raise PermissionDenied(_("Only managers declare big-sale windows."))
    audit_record(actor=by, action="tickets.big_sale_delete", obj=window, changes={"name": window.name})
    window.delete()


def current_window() -> BigSaleWindow | None:
    return window_at(timezone.now())
