"""Status badges and SLA chips: one look everywhere (simple tags: the queue renders many of them)."""

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _

from tickets.models import Ticket

register = template.Library()
STATUS_LABELS = dict(Ticket.Status.choices)
SLA_LABELS = dict(Ticket.SlaState.choices)


@register.simple_tag
def status_badge(status: str) -> SafeString:
    return format_html(
        '<span class="badge status-{}" data-status="{}">{}</span>',
        status,
        status,
        STATUS_LABELS.get(status, status),
    )


@register.simple_tag
def sla_chip(ticket: Ticket) -> SafeString:
    """Green on track, amber at risk (with time left), red breached (with time over), grey paused/met."""
    state = ticket.sla_state
    due = ticket.sla_due
    extra = ""
    if ticket.status in Ticket.OPEN_STATUSES and due is not None and state != Ticket.SlaState.PAUSED:
        now = timezone.now()
        if due < now:
            extra = " · " + _("%(over)s over") % {"over": timesince(due, now, depth=1)}
        else:
            extra = " · " + _("%(left)s left") % {"left": timeuntil(due, now, depth=1)}
    return format_html(
        '<span class="badge sla-{}" data-sla="{}">{}{}</span>',
        state,
        state,
        SLA_LABELS.get(state, state),
        extra,
    )


@register.filter
def markdown(text: str) -> SafeString:
    """Sanitised HTML from Markdown (the allow-list in config.markdown)."""
    from config.markdown import render_markdown

    return mark_safe(render_markdown(text))  # noqa: S308 (sanitised by render_markdown)
