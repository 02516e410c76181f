"""Factories for tickets: real rows through the services, with shortcuts to a given status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accounts.models import User
from tickets import services
from tickets.models import SolutionPlan, Ticket


def make_ticket(requester: User, **fields: Any) -> Ticket:
    """File a request through the service (key, SLA, audit) with sensible defaults."""
    values: dict[str, Any] = {
        "title": "Coupon page shows the wrong price",
        "description": "The **Double 11** coupon shows 20 instead of 30.",
        "type": Ticket.Type.INCIDENT,
        "urgency": Ticket.Urgency.ROUTINE,
    }
    values.update(fields)
    return services.ticket_create(requester=requester, **values)


def force_status(
    ticket: Ticket, status: str, *, previous: str = "", resolved_at: datetime | None = None
) -> Ticket:
    """Put a ticket straight into a status (for testing the step out of it)."""
    from django.utils import timezone

    updates: dict[str, Any] = {"status": status, "previous_status": previous}
    if status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
        updates["resolved_at"] = resolved_at or timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(**updates)
    ticket.refresh_from_db()
    return ticket


def approved_plan(ticket: Ticket, author: User) -> SolutionPlan:
    return SolutionPlan.objects.create(
        ticket=ticket,
        implementation_path="Build it",
        milestones=[{"name": "confirm", "due": "2026-12-01"}],
        author=author,
        status=SolutionPlan.Status.APPROVED,
    )
