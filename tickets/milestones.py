"""A solution plan's milestones (issue 21): dated steps from confirming the requirement to going live.

Dates must be in the listed order (a later milestone never falls before an earlier one); a list out of
order is refused whole with a message naming the milestone, and nothing is saved. A milestone not done
by its date is overdue while its ticket is open (the queue's badge and filter, the dashboard's widget).
A beat task reminds the ticket's assignee (or the plan's author) `MILESTONE_REMINDER_DAYS` days before
each due date, once: a unique (milestone, due date) row records the reminder, so a re-run or a second
worker never sends it again, and only a moved date reminds anew.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record, notify
from tickets import permissions
from tickets.models import MilestoneReminder, PlanMilestone, SolutionPlan, Ticket, TicketEvent

log = logging.getLogger(__name__)
DEFAULT_REMINDER_DAYS = 2


@dataclass(frozen=True)
class MilestoneInput:
    name: str
    due: dt.date


def milestone_label(name: str) -> str:
    """The standard milestones in words ("go_live" → "Go live"); any other name as written."""
    from tickets.forms import MILESTONES

    return str(dict(MILESTONES).get(name, name))


def milestones_read(items: Iterable[dict[str, Any]]) -> list[MilestoneInput]:
    """Milestones as the plan form and the JSON list give them ({name, due}); a bad date is named."""
    read: list[MilestoneInput] = []
    for item in items:
        name = str(item.get("name") or "").strip()
        raw = item.get("due")
        due = raw if isinstance(raw, dt.date) else parse_date(str(raw or ""))
        if not name:
            raise DjangoValidationError({"milestones": _("Every milestone needs a name.")})
        if due is None:
            raise DjangoValidationError(
                {
                    "milestones": _("“%(name)s” needs a due date (YYYY-MM-DD).")
                    % {"name": milestone_label(name)}
                }
            )
        read.append(MilestoneInput(name=name[:60], due=due))
    return read


def milestones_check_order(items: list[MilestoneInput]) -> None:
    """Refuse a list whose dates go backwards, naming the first milestone out of order."""
    for before, after in zip(items, items[1:], strict=False):
        if after.due < before.due:
            raise DjangoValidationError(
                {
                    f"milestone_{after.name}": _(
                        "“%(name)s” (%(due)s) is due before “%(before)s” (%(before_due)s): milestones "
                        "must be in date order."
                    )
                    % {
                        "name": milestone_label(after.name),
                        "due": after.due.isoformat(),
                        "before": milestone_label(before.name),
                        "before_due": before.due.isoformat(),
                    }
                }
            )


def milestones_replace(*, plan: SolutionPlan, items: list[MilestoneInput]) -> None:
    """Make the plan's milestone rows match the list (inside the caller's transaction): a milestone kept
    by name keeps its done mark and its reminders."""
    existing = {m.name: m for m in plan.milestone_rows.all()}
    keep: set[int] = set()
    for position, item in enumerate(items):
        row = existing.get(item.name)
        if row is None:
            row = PlanMilestone.objects.create(plan=plan, position=position, name=item.name, due=item.due)
        elif (row.position, row.due) != (position, item.due):
            row.position, row.due = position, item.due
            row.save(update_fields=["position", "due"])
        keep.add(row.pk)
    plan.milestone_rows.exclude(pk__in=keep).delete()


@transaction.atomic
def milestone_mark(*, milestone_id: int, ticket: Ticket, by: User, done: bool) -> PlanMilestone:
    """Mark a milestone done (or not done again); support staff only; audited."""
    if not permissions.can_work(by):
        raise PermissionDenied(_("Only support staff may do this."))
    milestone = (
        PlanMilestone.objects.select_for_update().filter(pk=milestone_id, plan__ticket_id=ticket.pk).first()
    )
    if milestone is None:
        raise DjangoValidationError({"milestone": _("This plan has no such milestone.")})
    if milestone.done == done:
        return milestone
    milestone.done = done
    milestone.done_at = timezone.now() if done else None
    milestone.done_by = by if done else None
    milestone.save(update_fields=["done", "done_at", "done_by"])
    from tickets.services.shared import _event  # the services package imports this module

    _event(
        ticket,
        by,
        TicketEvent.Kind.PLAN,
        field="milestone",
        old=milestone_label(milestone.name),
        new=_("done") if done else _("not done"),
        internal=True,
    )
    audit_record(
        actor=by,
        action="ticket.milestone",
        obj=ticket,
        changes={"milestone": milestone.name, "done": done},
    )
    return milestone


def today() -> dt.date:
    return timezone.localdate()


def overdue_milestones_q(on: dt.date | None = None) -> QuerySet[PlanMilestone]:
    """Milestones not done whose date has passed, on open tickets."""
    return PlanMilestone.objects.filter(
        done=False, due__lt=on or today(), plan__ticket__status__in=Ticket.OPEN_STATUSES
    )


def has_overdue_milestone(on: dt.date | None = None) -> Exists:
    """An expression for a Ticket queryset: whether the ticket has an overdue milestone (one subquery)."""
    return Exists(
        PlanMilestone.objects.filter(plan__ticket=OuterRef("pk"), done=False, due__lt=on or today())
    )


def overdue_milestones_for(*, user: User, limit: int = 10) -> tuple[int, list[PlanMilestone]]:
    """How many milestones are overdue on open tickets the person may see, and the oldest few."""
    rows = overdue_milestones_q()
    if not permissions.can_work(user):
        rows = rows.filter(plan__ticket__team_id=user.team_id)
    count = rows.aggregate(n=Count("pk"))["n"]
    oldest = list(rows.select_related("plan__ticket__assignee").order_by("due", "pk")[:limit])
    return count, oldest


def milestone_reminders_send(*, on: dt.date | None = None, days: int | None = None) -> int:
    """Remind about each milestone due within `days` days, once per milestone and date; returns how many
    reminders went out."""
    on = on or today()
    days = getattr(settings, "MILESTONE_REMINDER_DAYS", DEFAULT_REMINDER_DAYS) if days is None else days
    due_soon = (
        PlanMilestone.objects.filter(
            done=False,
            due__gte=on,
            due__lte=on + dt.timedelta(days=days),
            plan__ticket__status__in=Ticket.OPEN_STATUSES,
        )
        .exclude(Exists(MilestoneReminder.objects.filter(milestone=OuterRef("pk"), due=OuterRef("due"))))
        .select_related("plan__ticket__assignee", "plan__author")
        .order_by("due", "pk")
    )
    sent = 0
    for milestone in due_soon:
        if _remind(milestone):
            sent += 1
    log.info("milestone reminders: %d sent for %s (+%d days)", sent, on, days)
    return sent


def _remind(milestone: PlanMilestone) -> bool:
    from tickets.services.shared import _ticket_url

    ticket = milestone.plan.ticket
    recipient = ticket.assignee or milestone.plan.author
    try:
        with transaction.atomic():
            MilestoneReminder.objects.create(milestone=milestone, due=milestone.due, recipient=recipient)
            notify(
                recipients=[recipient],
                kind="ticket.milestone_due",
                params={
                    "key": ticket.key,
                    "due": milestone.due.isoformat(),
                    "text": milestone_label(milestone.name),
                },
                url=_ticket_url(ticket),
            )
    except IntegrityError:  # another run reminded first
        return False
    return True
