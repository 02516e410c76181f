"""Status badges and SLA chips: one look everywhere."""

from typing import Any

from django import template
from django.utils import timezone

from tickets.models import Ticket

register = template.Library()


@register.inclusion_tag("tickets/partials/status_badge.html")
def status_badge(status: str) -> dict[str, Any]:
    return {
        "status": status,
        "label": Ticket.Status(status).label if status in Ticket.Status.values else status,
    }


@register.inclusion_tag("tickets/partials/sla_chip.html")
def sla_chip(ticket: Ticket) -> dict[str, Any]:
    """Green on track, amber at risk (with time left), red breached (with time over), grey paused/met."""
    due = ticket.sla_due
    now = timezone.now()
    return {
        "state": ticket.sla_state,
        "label": Ticket.SlaState(ticket.sla_state).label,
        "due": due,
        "overdue": due is not None and due < now,
        "open": ticket.status in Ticket.OPEN_STATUSES,
    }


@register.filter
def markdown(text: str) -> str:
    """Sanitised HTML from Markdown (the allow-list in config.markdown)."""
    from django.utils.safestring import mark_safe

    from config.markdown import render_markdown

    return mark_safe(render_markdown(text))  # noqa: S308 (sanitised by render_markdown)
