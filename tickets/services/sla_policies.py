"""The SLA policies: defaults, the targets of a ticket, its due times, and a manager's edit of a policy."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from config.concurrency import check_version
from tickets import permissions, sla
from tickets.models import BusinessCalendar, SlaPolicy, SlaTypeCalendar, Ticket, WorkingHours
from tickets.oncall.big_sale import event_targets


def _targets(ticket: Ticket) -> sla.Targets:
    """The targets and calendar for the ticket's urgency and type."""
    targets = sla.load_targets(ticket.urgency)
    if ticket.urgency not in targets:
        sla_defaults_ensure()
        targets = sla.load_targets(ticket.urgency)
    # a big-sale window's targets for urgent and incident work filed during it (tickets.oncall.big_sale)
    return event_targets(ticket, targets[ticket.urgency].for_type(ticket.type))


DEFAULT_POLICIES = [("urgent", 30, 120), ("routine", 240, 3 * 540), ("planned", 2 * 540, 20 * 540)]
OFFICE_CALENDAR, ROUND_THE_CLOCK_CALENDAR = "Shanghai office", "Round the clock"


@transaction.atomic
def sla_defaults_ensure() -> None:
    """The design's default calendars (Mon–Fri 09:00–18:00 Asia/Shanghai, and round the clock) and
    policies, when missing: urgent work runs round the clock, the rest on office hours."""
    import datetime as dt

    office, created = BusinessCalendar.objects.get_or_create(
        name=OFFICE_CALENDAR, defaults={"timezone": "Asia/Shanghai"}
    )
    if created:
        WorkingHours.objects.bulk_create(
            WorkingHours(calendar=office, weekday=day, start=dt.time(9), end=dt.time(18)) for day in range(5)
        )
    always, created = BusinessCalendar.objects.get_or_create(
        name=ROUND_THE_CLOCK_CALENDAR, defaults={"timezone": "Asia/Shanghai"}
    )
    if created:
        WorkingHours.objects.bulk_create(
            WorkingHours(calendar=always, weekday=day, start=dt.time(0), end=dt.time(0)) for day in range(7)
        )
    for urgency, first, resolution in DEFAULT_POLICIES:
        SlaPolicy.objects.get_or_create(
            urgency=urgency,
            defaults={
                "first_response_minutes": first,
                "resolution_minutes": resolution,
                "calendar": always if urgency == Ticket.Urgency.URGENT else office,
            },
        )


def _apply_due_times(ticket: Ticket) -> None:
    """The ticket's SLA deadlines for its urgency and type; one that has no deadline (a target above the
    limit stored before it existed, or a calendar without working time left) is refused naming the
    urgency, and the caller's transaction rolls back whatever it wrote."""
    try:
        sla.apply_due_times(ticket, _targets(ticket))
    except sla.CalendarWithoutHours as exc:
        raise DjangoValidationError(
            {
                "urgency": _(
                    "The SLA of this urgency has no deadline on its calendar. Ask a manager to correct the "
                    "SLA policy."
                )
            },
            code="sla_out_of_reach",
        ) from exc


@transaction.atomic
def sla_policy_update(
    *,
    policy: SlaPolicy,
    by: User,
    first_response_minutes: int,
    resolution_minutes: int,
    calendar: BusinessCalendar,
    type_calendars: dict[str, BusinessCalendar] | None = None,
    expected_version: str | None = None,
) -> SlaPolicy:
    """A manager changes an urgency's targets and calendars: the policy's own and, per request type, another
    (new tickets and urgency or type changes use them); `type_calendars=None` keeps the per-type ones. With
    `expected_version`, a policy saved by someone else since is an EditConflict."""
    if not permissions.can_edit_sla(by):
        raise PermissionDenied(_("Only managers edit SLA policies."))
    policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
    check_version(policy, expected_version)
    current_types = {row.type: row.calendar for row in policy.type_calendars.select_related("calendar")}
    chosen = current_types if type_calendars is None else dict(type_calendars)
    unknown = set(chosen) - set(Ticket.Type.values)
    if unknown:
        raise DjangoValidationError({"type_calendars": _("Unknown request type.")})
    old = {
        "first_response_minutes": policy.first_response_minutes,
        "resolution_minutes": policy.resolution_minutes,
        "calendar": policy.calendar_id,
        "type_calendars": {t: c.pk for t, c in sorted(current_types.items())},
    }
    errors = sla.target_errors(
        calendars=_with_rows([calendar, *chosen.values()]),
        first_response_minutes=first_response_minutes,
        resolution_minutes=resolution_minutes,
    )
    if errors:
        raise DjangoValidationError(errors)
    policy.first_response_minutes, policy.resolution_minutes, policy.calendar = (
        first_response_minutes,
        resolution_minutes,
        calendar,
    )
    policy.full_clean()
    policy.save()
    policy.type_calendars.all().delete()
    SlaTypeCalendar.objects.bulk_create(
        SlaTypeCalendar(policy=policy, type=t, calendar=c) for t, c in sorted(chosen.items())
    )
    audit_record(
        actor=by,
        action="sla.policy_update",
        obj=policy,
        changes={
            "old": old,
            "new": {
                "first_response_minutes": first_response_minutes,
                "resolution_minutes": resolution_minutes,
                "calendar": calendar.pk,
                "type_calendars": {t: c.pk for t, c in sorted(chosen.items())},
            },
        },
    )
    return policy


def _with_rows(calendars: Iterable[BusinessCalendar]) -> list[BusinessCalendar]:
    """The calendars (each once) with their hours, holidays and dated hours loaded."""
    ids = {c.pk for c in calendars if c is not None}
    return list(
        BusinessCalendar.objects.filter(pk__in=ids).prefetch_related("hours", "holidays", "working_days")
    )
