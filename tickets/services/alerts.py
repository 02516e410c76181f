"""Monitoring alerts become incident tickets: a firing alert opens one, the same fingerprint comments on it
while it is open, and a resolved alert comments and resolves it when no person has touched it yet.

The view (tickets.intake_alerts) checks the token and the payload and hands over `IncomingAlert`s; every
ticket write goes through the ticket services, so keys, SLA clocks, notifications and the audit trail are
those of any other ticket. The requester of these tickets is one system account (`SYSTEM_USERNAME`): it
cannot sign in (no usable password, inactive) and belongs to the intake team, so its comments count as the
requesting side's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import Team, User
from tickets.models import AlertLink, Ticket, TicketEvent
from tickets.services.conversation import comment_add
from tickets.services.intake import ticket_create
from tickets.services.workflow import ticket_transition

log = logging.getLogger(__name__)

SYSTEM_USERNAME = "monitoring"
FIRING, RESOLVED = "firing", "resolved"
OPENED, COMMENTED, RESOLVED_ACTION = "opened", "commented", "resolved"
# pg_advisory_xact_lock(class, key): one class for alert fingerprints, so two deliveries of one alert
# at the same moment open one ticket, not two.
_LOCK_CLASS = 0x414C  # "AL"


class AlertIntakeUnavailable(Exception):
    """The intake is not configured (no team to give incidents to): HTTP 503."""


@dataclass(frozen=True)
class IncomingAlert:
    """One alert, checked, whatever format it came in."""

    fingerprint: str
    status: str  # firing | resolved
    title: str
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    generator_url: str = ""
    source: str = "Alertmanager"  # empty: the generic format


# --- fingerprints --------------------------------------------------------------------------------------

_FNV_OFFSET, _FNV_PRIME, _MASK = 14695981039346656037, 1099511628211, (1 << 64) - 1


def labels_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's own fingerprint of a label set (prometheus/common `LabelSet.Fingerprint`: FNV-1a
    64 over the sorted names and values, each followed by byte 0xff; 16 hex digits), so an alert sent
    in the generic format de-duplicates with the same alert sent by Alertmanager."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                digest = ((digest ^ byte) * _FNV_PRIME) & _MASK
            digest = ((digest ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{digest:016x}"


# --- Markdown -------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~-])")


def _md(text: str) -> str:
    """Text shown literally in Markdown (one line: table cells)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _md_block(text: str) -> str:
    """Text shown literally in Markdown, keeping its lines."""
    return "  \n".join(_md(line) for line in str(text).strip().splitlines())


def _md_link(url: str) -> str:
    """A link when the URL is http(s), else the text shown literally (no `javascript:` links)."""
    url = url.strip()
    if not re.match(r"^https?://[^\s]+$", url, re.IGNORECASE):
        return _md(url)
    target = url.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
    return f"[{_md(url)}]({target})"


def _table(heading: str, rows: Mapping[str, str]) -> list[str]:
    if not rows:
        return []
    lines = [f"### {heading}", "", f"| {_('Name')} | {_('Value')} |", "|---|---|"]
    lines += [f"| {_md(name)} | {_md(value)} |" for name, value in sorted(rows.items())]
    return [*lines, ""]


def _description(alert: IncomingAlert) -> str:
    lines = [
        _("**Alert firing** (from %(source)s), fingerprint `%(fingerprint)s`.")
        % {"source": _md(alert.source) or _("a monitor"), "fingerprint": alert.fingerprint},
        "",
    ]
    if alert.starts_at is not None:
        lines += [_("Since: %(time)s") % {"time": alert.starts_at.isoformat()}, ""]
    for text in (
        alert.annotations.get("summary", ""),
        alert.annotations.get("description", ""),
        alert.description,
    ):
        if text.strip():
            lines += [_md_block(text), ""]
    runbook = alert.annotations.get("runbook_url", "")
    if runbook.strip():
        lines += [_("**Runbook:** %(link)s") % {"link": _md_link(runbook)}, ""]
    if alert.generator_url.strip():
        lines += [_("**Source:** %(link)s") % {"link": _md_link(alert.generator_url)}, ""]
    lines += _table(_("Labels"), alert.labels)
    lines += _table(_("Annotations"), alert.annotations)
    return "\n".join(lines).strip()


def _comment(alert: IncomingAlert) -> str:
    if alert.status == FIRING:
        text = _("The alert `%(fingerprint)s` is still firing.") % {"fingerprint": alert.fingerprint}
    else:
        text = _("The alert `%(fingerprint)s` is resolved.") % {"fingerprint": alert.fingerprint}
    summary = alert.annotations.get("summary", "") or alert.title
    return f"{text}\n\n{_md_block(summary)}" if summary.strip() else text


# --- the intake -----------------------------------------------------------------------------------------


def _intake_team() -> Team:
    name = settings.ALERT_INTAKE_TEAM
    team = Team.objects.filter(name=name).first()
    if team is None:
        raise AlertIntakeUnavailable(
            _("Alert intake is off: ALERT_INTAKE_TEAM names no team (%(name)s).") % {"name": name}
        )
    return team


def alert_system_user(team: Team) -> User:
    """The account alert tickets are filed by: created on first use, inactive, without a usable password,
    a member of the intake team (moved along when the setting names another team)."""
    user = User.objects.filter(username=SYSTEM_USERNAME).first()
    if user is None:
        user = User(username=SYSTEM_USERNAME, is_active=False, team=team, display_name="Monitoring")
        user.set_unusable_password()
        user.save()
    elif user.team_id != team.pk:
        user.team = team
        user.save(update_fields=["team"])
    return user


def _lock_fingerprint(fingerprint: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_CLASS, fingerprint])


def _open_ticket_for(fingerprint: str) -> Ticket | None:
    link = (
        AlertLink.objects.filter(fingerprint=fingerprint, ticket__status__in=Ticket.OPEN_STATUSES)
        .select_related("ticket")
        .order_by("-created_at", "-id")
        .first()
    )
    return link.ticket if link else None


def touched_by_people(ticket: Ticket, system: User) -> bool:
    """Whether anyone but the monitoring account changed the ticket since it was opened: a status
    change, an assignment, a reply or note, a field, a file (any event with a person as its actor)."""
    # an assignment by the system (the person on call, tickets.oncall) is no person's touch; a person's
    # assignment is an event with that person as its actor
    if ticket.status != Ticket.Status.NEW:
        return True
    return TicketEvent.objects.filter(ticket=ticket, actor__isnull=False).exclude(actor_id=system.pk).exists()


def _receive_one(
    alert: IncomingAlert, team: Team, system: User, now: datetime | None
) -> dict[str, str] | None:
    _lock_fingerprint(alert.fingerprint)
    ticket = _open_ticket_for(alert.fingerprint)
    if alert.status == FIRING and ticket is None:
        ticket = ticket_create(
            requester=system,
            title=alert.title,
            description=_description(alert),
            type=Ticket.Type.INCIDENT,
            urgency=Ticket.Urgency.URGENT,
            channel=Ticket.Channel.ALERT,
            team=team,
            now=now,
        )
        AlertLink.objects.create(fingerprint=alert.fingerprint, ticket=ticket)
        return {"key": ticket.key, "action": OPENED}
    if ticket is None:  # resolved, and no open ticket to tell: nothing to do
        log.info("alert %s resolved without an open ticket", alert.fingerprint)
        return None
    comment_add(ticket=ticket, by=system, body=_comment(alert))
    if alert.status == RESOLVED and not touched_by_people(ticket, system):
        ticket_transition(
            ticket=ticket, to=Ticket.Status.RESOLVED, by=None, note=_("The alert resolved itself.")
        )
        return {"key": ticket.key, "action": RESOLVED_ACTION}
    return {"key": ticket.key, "action": COMMENTED}


@transaction.atomic
def alerts_receive(*, alerts: Sequence[IncomingAlert], now: datetime | None = None) -> list[dict[str, str]]:
    """Handle a delivery's alerts in order, all or nothing (a failure lets the sender retry the whole
    delivery). Returns `{key, action}` per alert that touched a ticket (a resolved alert without an open
    ticket touches none). Texts are written in the site's language (LANGUAGE_CODE). `now`: when the
    alerts arrived (tests; the SLA clocks of opened tickets start then)."""
    team = _intake_team()
    system = alert_system_user(team)
    results = []
    with translation.override(settings.LANGUAGE_CODE):
        for alert in alerts:
            outcome = _receive_one(alert, team, system, now)
            if outcome is not None:
                results.append(outcome)
    return results
