"""Status badges and SLA chips: one look everywhere (simple tags: the queue renders many of them)."""

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
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


def _span(delta: dt.timedelta) -> str:
    """A short duration ("25 min", "5 h", "3 d"): the queue shows fifty of these."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return _("%(n)d min") % {"n": minutes}
    if minutes < 48 * 60:
        return _("%(n)d h") % {"n": minutes // 60}
    return _("%(n)d d") % {"n": minutes // (24 * 60)}


@register.simple_tag
def sla_chip(ticket: Ticket) -> SafeString:
    """Green on track, amber at risk (with time left), red breached (with time over), grey paused/met."""
    state = ticket.sla_state
    due = ticket.sla_due
    extra = ""
    if ticket.status in Ticket.OPEN_STATUSES and due is not None and state != Ticket.SlaState.PAUSED:
        now = timezone.now()
        if due < now:
            extra = " · " + _("%(over)s over") % {"over": _span(now - due)}
        else:
            extra = " · " + _("%(left)s left") % {"left": _span(due - now)}
    return format_html(
        '<span class="badge sla-{}" data-sla="{}">{}{}</span>',
        state,
        state,
        SLA_LABELS.get(state, state),
        extra,
    )


@register.simple_tag(takes_context=True)
def history_rows(context: template.Context, events: Any) -> list[Any]:
    """The history tab's rows for the person viewing the page: `{% history_rows events as rows %}`."""
    from tickets.history import history_rows as rows_for

    request = context.get("request")
    return rows_for(events, viewer=getattr(request, "user", None))


@register.filter
def milestone_rows(milestones: Any) -> list[tuple[str, str]]:
    """A plan's milestones as (label, due date in the locale's format): "go_live" → "Go live"."""
    from django.db import models

    from accounts.audit_display import value_display
    from tickets.forms import MILESTONES

    labels = dict(MILESTONES)
    due = models.DateField()
    return [
        (
            str(labels.get(m.get("name"), m.get("name") or "")),
            value_display(due, "due", m.get("due"), viewer=None),
        )
        for m in milestones or []
        if isinstance(m, dict)
    ]


@register.filter
def markdown(text: str) -> SafeString:
    """Sanitised HTML from Markdown (the allow-list in config.markdown)."""
    from config.markdown import render_markdown

    return mark_safe(render_markdown(text))  # noqa: S308 (sanitised by render_markdown)


TYPE_LABELS = dict(Ticket.Type.choices)
URGENCY_LABELS = dict(Ticket.Urgency.choices)


def _with_overdue_badge(title: str, ticket: Ticket) -> SafeString:
    """The title with a red "milestone overdue" badge when the queue found one (tickets.milestones)."""
    if not getattr(ticket, "overdue_milestones", False):
        return format_html("{}", title)
    return format_html(
        '{} <span class="badge text-bg-danger" data-overdue-milestone>{}</span>',
        title,
        _("Milestone overdue"),
    )


@register.simple_tag
def queue_row(ticket: Ticket) -> SafeString:
    """One row of the queue in one call (the queue renders 50: per-variable template lookups add up)."""
    due = ticket.sla_due
    due_html = (
        format_html(
            '<time datetime="{}">{}</time>',
            due.isoformat(),
            timezone.localtime(due).strftime("%Y-%m-%d %H:%M"),
        )
        if due is not None
        else "—"
    )
    title = ticket.title if len(ticket.title) <= 80 else ticket.title[:79] + "…"
    return format_html(
        '<tr data-key="{key}"><td><input class="form-check-input" type="checkbox" name="keys" value="{key}" '
        'form="bulk-form" aria-label="{key}"></td><td class="text-nowrap"><a href="{url}">{key}</a></td><td>{title}</td>'
        '<td>{status}</td><td>{sla}</td><td class="mt-secondary">{urgency}</td><td class="mt-secondary">{type}</td>'
        '<td class="mt-secondary">{team}</td><td class="mt-secondary">{assignee}</td>'
        '<td class="mt-secondary">{due}</td><td class="mt-secondary">{updated}</td></tr>',
        key=ticket.key,
        url=ticket.get_absolute_url(),
        title=_with_overdue_badge(title, ticket),
        status=status_badge(ticket.status),
        sla=sla_chip(ticket),
        urgency=URGENCY_LABELS.get(ticket.urgency, ticket.urgency),
        type=TYPE_LABELS.get(ticket.type, ticket.type),
        team=ticket.team.name,
        assignee=str(ticket.assignee) if ticket.assignee_id else "—",
        due=due_html,
        updated=format_html(
            '<time datetime="{}">{}</time>',
            ticket.updated_at.isoformat(),
            timezone.localtime(ticket.updated_at).strftime("%Y-%m-%d %H:%M"),
        ),
    )


@register.simple_tag
def sort_header(headers: dict[str, dict[str, str]], column: str, url: str) -> SafeString:
    """A sortable column header of the queue: a link that toggles the order, aria-sort and an arrow on the
    column the rows are sorted by (the links come from tickets.queue_views.sort_headers)."""
    h = headers[column]
    href = f"{url}?{h['query']}"
    return format_html(
        '<th scope="col"{}{}><a class="mt-sort link-body-emphasis text-decoration-none" href="{}" hx-get="{}" '
        'hx-target="#queue-results" hx-push-url="true" hx-indicator="#queue-busy" data-sort="{}">{}{}</a></th>',
        format_html(' class="{}"', h["css"]) if h["css"] else "",
        format_html(' aria-sort="{}"', h["aria"]) if h["aria"] else "",
        href,
        href,
        column,
        h["label"],
        format_html(' <span aria-hidden="true">{}</span>', h["arrow"]) if h["arrow"] else "",
    )
