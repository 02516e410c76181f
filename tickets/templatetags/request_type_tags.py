"""The ticket page's card of request-type field values (tickets.request_types)."""

from __future__ import annotations

from typing import Any

from django import template

from tickets.models import Ticket
from tickets.request_types import custom_values_shown

register = template.Library()


@register.inclusion_tag("tickets/request_types/ticket_fields.html", takes_context=True)
def request_type_fields(context: dict[str, Any], ticket: Ticket) -> dict[str, Any]:
    viewer = getattr(context.get("request"), "user", None)
    return {"ticket": ticket, "values": custom_values_shown(ticket, viewer=viewer)}
