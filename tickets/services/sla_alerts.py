"""The periodic SLA scan: store each ticket's at-risk or breached state and tell people once."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.selectors import managers
from accounts.services import notify
from tickets import sla
from tickets.models import Ticket, TicketEvent
from tickets.services.shared import _event, _ticket_url

log = logging.getLogger(__name__)
S = Ticket.Status


def sla_scan(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Store the SLA state of every ticket whose alert time has come, and notify the assignee and the
    managers once per new state (the stored state changes once, so a re-run sends nothing)."""
    now = now or timezone.now()
    counts = {Ticket.SlaState.AT_RISK: 0, Ticket.SlaState.BREACHED: 0}
    active = [s for s in Ticket.OPEN_STATUSES if s != S.WAITING_ON_REQUESTER]
    with transaction.atomic():
        due = list(
            Ticket.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("assignee")
            .filter(sla_alert_at__lte=now, status__in=active)
            .order_by("sla_alert_at")[:batch]
        )
        manager_list = list(managers()) if due else []
        for ticket in due:
            old = ticket.sla_state
            sla.refresh(ticket, now)
            ticket.save(update_fields=["sla_state", "sla_due", "sla_alert_at"])
            if ticket.sla_state == old or ticket.sla_state not in counts:
                continue
            counts[ticket.sla_state] += 1
            _event(ticket, None, TicketEvent.Kind.SLA, field="sla_state", old=old, new=ticket.sla_state)
            notify(
                recipients=[*([ticket.assignee] if ticket.assignee_id else []), *manager_list],
                kind="ticket.sla",
                verb=f"ticket.sla_{ticket.sla_state}",
                params={"state": ticket.sla_state, "key": ticket.key, "title": ticket.title},
                url=_ticket_url(ticket),
                chat=ticket.sla_state == Ticket.SlaState.BREACHED,
            )
    if any(counts.values()):
        log.info(
            "sla scan at %s: %s at risk, %s breached", now.isoformat(), counts["at_risk"], counts["breached"]
        )
    return {str(k): v for k, v in counts.items()}
