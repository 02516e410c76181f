"""Escalation rules: at N % of an SLA target a rule acts on the ticket (reassign to the person on call or the
team lead, raise the urgency, notify the managers, post to the team chat), once per ticket.

The scan runs with the SLA beat task (tickets.tasks.sla_scan). Per rule it selects the open tickets of the
rule's urgency that the rule has not fired on, whose mark can have passed (N % of the shortest target the
ticket can have, in wall time: business time never runs faster), in one query; computes each candidate's
mark on its own calendar and targets (a big-sale window's when it was filed in one); and writes the
firings of those whose mark has passed with one `INSERT … ON CONFLICT DO NOTHING RETURNING`. Only the
tickets that insert returns are acted on, so a second scan, or two scans at once, never act twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import managers
from accounts.services import audit_record, notify
from tickets import sla
from tickets.chat_robots import chat_post
from tickets.models import BigSaleWindow, EscalationFiring, EscalationRule, Ticket, TicketEvent
from tickets.oncall import big_sale
from tickets.oncall.rota import responsible_rota, rota_plain

log = logging.getLogger(__name__)
R = EscalationRule
RAISED = {Ticket.Urgency.PLANNED: Ticket.Urgency.ROUTINE, Ticket.Urgency.ROUTINE: Ticket.Urgency.URGENT}


def _mark(ticket: Ticket, rule: EscalationRule, targets: sla.Targets) -> dt.datetime:
    """The instant at which `rule.percent` % of the ticket's target has passed (pauses push it back)."""
    target = targets.first_response if rule.target == R.Target.FIRST_RESPONSE else targets.resolution
    paused = dt.timedelta(seconds=ticket.sla_paused_seconds)
    return sla.add_business_time(targets.calendar, ticket.created_at, target * rule.percent / 100 + paused)


def _shortest_minutes(rule: EscalationRule) -> int:
    """The shortest target a ticket of the rule's policy can have (the policy's, or an event window's)."""
    policy = rule.policy
    if rule.target == R.Target.FIRST_RESPONSE:
        own = policy.first_response_minutes
        fields = ("urgent_first_response_minutes", "incident_first_response_minutes")
    else:
        own = policy.resolution_minutes
        fields = ("urgent_resolution_minutes", "incident_resolution_minutes")
    lows = BigSaleWindow.objects.aggregate(*(Min(f) for f in fields)).values()
    return min([own, *(v for v in lows if v is not None)])


def _candidates(rule: EscalationRule, now: dt.datetime) -> list[Ticket]:
    earliest = now - dt.timedelta(minutes=_shortest_minutes(rule) * rule.percent / 100)
    active = [s for s in Ticket.OPEN_STATUSES if s != Ticket.Status.WAITING_ON_REQUESTER]
    rows = Ticket.objects.filter(
        urgency=rule.policy.urgency, status__in=active, created_at__lte=earliest
    ).exclude(Exists(EscalationFiring.objects.filter(rule=rule, ticket=OuterRef("pk"))))
    if rule.target == R.Target.FIRST_RESPONSE:
        rows = rows.filter(first_response_at__isnull=True)
    return list(rows.only("pk", "key", "type", "urgency", "created_at", "sla_paused_seconds", "team_id"))


def _fire(rule: EscalationRule, ticket_ids: list[int], now: dt.datetime) -> list[int]:
    """Record the firings; returns the tickets whose firing is new (the others fired already)."""
    if not ticket_ids:
        return []
    table = connection.ops.quote_name(EscalationFiring._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (rule_id, ticket_id, fired_at, outcome) "  # noqa: S608 (a model's table name)
            "SELECT %s, t, %s, '' FROM unnest(%s::bigint[]) AS t "
            "ON CONFLICT (rule_id, ticket_id) DO NOTHING RETURNING ticket_id",
            [rule.pk, now, ticket_ids],
        )
        return [row[0] for row in cursor.fetchall()]


def escalation_scan(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Fire every enabled rule whose mark has passed on tickets it has not fired on; returns counts per action."""
    now = now or timezone.now()
    counts = dict.fromkeys(R.Action.values, 0)
    rules = list(R.objects.filter(enabled=True).select_related("policy").order_by("pk"))
    if not rules:
        return counts
    windows = list(BigSaleWindow.objects.all())
    targets_by_urgency = sla.load_targets()
    for rule in rules:
        policy_targets = targets_by_urgency.get(rule.policy.urgency)
        if policy_targets is None:
            continue
        due = []
        for ticket in _candidates(rule, now):
            targets = big_sale.event_targets(ticket, policy_targets.for_type(ticket.type), windows)
            try:
                if _mark(ticket, rule, targets) <= now:
                    due.append(ticket.pk)
            except sla.CalendarWithoutHours:
                continue
        if not due:
            continue
        with transaction.atomic():
            fired = _fire(rule, due, now)
            tickets = (
                Ticket.objects.select_for_update(of=("self",))
                .select_related("assignee", "team")
                .filter(pk__in=fired)
                .order_by("pk")
            )
            for ticket in tickets:
                outcome = _act(rule, ticket, now)
                EscalationFiring.objects.filter(rule=rule, ticket=ticket).update(outcome=outcome[:200])
                counts[rule.action] += 1
    if any(counts.values()):
        log.info("escalation scan at %s: %s", now.isoformat(), counts)
    return counts


# --- the actions ---------------------------------------------------------------------------------------


def _reassign(ticket: Ticket, person: User | None, rule: EscalationRule) -> str:
    if person is None:
        return "nobody to assign"
    if person.pk == ticket.assignee_id:
        return f"already with {person.username}"
    old = ticket.assignee
    ticket.assignee = person
    ticket.save(update_fields=["assignee", "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEvent.Kind.ASSIGN,
        field="assignee",
        old=str(old or ""),
        new=str(person),
        assignee=person,
        note=_("Escalated at %(percent)s%% of the %(target)s target.")
        % {"percent": rule.percent, "target": rule.get_target_display().lower()},
    )
    audit_record(
        actor=None,
        action="ticket.assign",
        obj=ticket,
        changes={"assignee": [old.username if old else None, person.username], "by": f"escalation {rule.pk}"},
    )
    notify(
        recipients=[person], kind="ticket.assigned", params={"key": ticket.key}, url=ticket.get_absolute_url()
    )
    return f"assigned to {person.username}"


def _raise_urgency(ticket: Ticket, rule: EscalationRule, now: dt.datetime) -> str:
    from tickets.services.sla_policies import _apply_due_times

    new = RAISED.get(ticket.urgency)
    if new is None:
        return "already urgent"
    old = ticket.urgency
    ticket.urgency = new
    try:
        _apply_due_times(ticket)
    except DjangoValidationError:  # the higher urgency's policy has no deadline: keep the ticket as it was
        ticket.urgency = old
        log.warning(
            "escalation %s could not raise %s: no deadline on the %s policy", rule.pk, ticket.key, new
        )
        return f"no deadline for {new}"
    sla.refresh(ticket, now)
    ticket.save(update_fields=["urgency", "updated_at", *sla.SLA_FIELDS])
    TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.FIELD, field="urgency", old=old, new=new)
    audit_record(
        actor=None,
        action="ticket.update",
        obj=ticket,
        changes={"urgency": [old, new], "by": f"escalation {rule.pk}"},
    )
    return f"urgency {old} → {new}"


def _act(rule: EscalationRule, ticket: Ticket, now: dt.datetime) -> str:
    action = rule.action
    if action in (R.Action.ASSIGN_ONCALL, R.Action.ASSIGN_LEAD):
        rota = responsible_rota(ticket.team_id)
        if rota is None:
            return "no rota"
        if action == R.Action.ASSIGN_LEAD:
            person = rota.lead if rota.lead_id and rota.lead.is_active else None
        else:
            user_id = rota_plain(rota).user_at(now)
            person = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
        return _reassign(ticket, person, rule)
    if action == R.Action.RAISE_URGENCY:
        return _raise_urgency(ticket, rule, now)
    params = {"percent": rule.percent, "target": rule.target, "key": ticket.key, "title": ticket.title}
    if action == R.Action.NOTIFY_MANAGERS:
        sent = notify(
            recipients=list(managers()), kind="ticket.escalated", params=params, url=ticket.get_absolute_url()
        )
        return f"notified {len(sent)}"
    rota = responsible_rota(ticket.team_id)
    team_id = rota.team_id if rota is not None else ticket.team_id
    title = _("Escalated at %(percent)s%% of the %(target)s target: %(key)s") % {
        "percent": rule.percent,
        "target": rule.get_target_display().lower(),
        "key": ticket.key,
    }
    posted = chat_post(team=team_id, title=title, text=ticket.title, url=ticket.get_absolute_url())
    return f"queued for {len(posted)} robots"


# --- rules ---------------------------------------------------------------------------------------------


@transaction.atomic
def escalation_rule_add(*, policy, by: User, target: str, percent: int, action: str) -> EscalationRule:  # noqa: ANN001
    """A manager adds a rule to an SLA policy."""
    from django.core.exceptions import PermissionDenied
    from django.core.exceptions import ValidationError as DjangoValidationError

    from tickets import permissions

    if not permissions.can_edit_escalation(by):
        raise PermissionDenied(_("Only managers edit escalation rules."))
    errors = {}
    if target not in R.Target.values:
        errors["target"] = _("Choose a target.")
    if action not in R.Action.values:
        errors["action"] = _("Choose an action.")
    if not isinstance(percent, int) or not 1 <= percent <= 500:
        errors["percent"] = _("Enter a percentage between 1 and 500.")
    if not errors and R.objects.filter(policy=policy, target=target, percent=percent, action=action).exists():
        errors["percent"] = _("This policy already has this rule.")
    if errors:
        raise DjangoValidationError(errors)
    rule = R.objects.create(policy=policy, target=target, percent=percent, action=action)
    audit_record(
        actor=by,
        action="sla.escalation_rule_add",
        obj=rule,
        changes={"policy": policy.urgency, "target": target, "percent": percent, "action": action},
    )
    return rule


@transaction.atomic
def escalation_rule_remove(*, rule: EscalationRule, by: User) -> None:
    from django.core.exceptions import PermissionDenied

    from tickets import permissions

    if not permissions.can_edit_escalation(by):
        raise PermissionDenied(_("Only managers edit escalation rules."))
    audit_record(
        actor=by,
        action="sla.escalation_rule_remove",
        obj=rule,
        changes={"target": rule.target, "percent": rule.percent, "action": rule.action},
    )
    rule.delete()
