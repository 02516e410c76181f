"""A campaign's plan and status: draft, edit, approve, move by hand, and follow its dates."""

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import managers
from accounts.services import audit_record, notify
from campaigns import permissions
from campaigns.models import Campaign
from campaigns.services.budget_warnings import _budget_warnings
from campaigns.services.guards import TransitionNotAllowed
from campaigns.utm import normalise
from config.concurrency import check_version
from config.text import name_text

log = logging.getLogger(__name__)


# Codes that would shadow the campaign pages' own addresses.
RESERVED_CODES = {"new", "calendar", "utm", "audience-size", "export"}
PLAN_FIELDS = (
    "name",
    "objective",
    "kpi_targets",
    "channels",
    "budget",
    "start_date",
    "end_date",
    "audience_include",
    "audience_include_mode",
    "audience_exclude",
)


def _clean_channels(channels: list[str]) -> list[str]:
    seen: list[str] = []
    for channel in channels:
        value = normalise(channel).replace(" ", "_")
        if value and value not in seen:
            seen.append(value)
    return seen


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.date, Decimal)):
        return str(value)
    return value


@transaction.atomic
def campaign_create(*, by: User, team_id: int | None = None, **fields: Any) -> Campaign:
    """Draft a campaign (status planning) owned by `by`, for their team (staff may name another team)."""
    if not permissions.can_create_campaign(by):
        raise PermissionDenied(_("You need a team to draft a campaign."))
    team = team_id if (team_id and permissions.sees_all_campaigns(by)) else by.team_id
    data = {k: v for k, v in fields.items() if k in PLAN_FIELDS or k == "code"}
    data["channels"] = _clean_channels(data.get("channels") or [])
    if "name" in data:
        data["name"] = name_text(data["name"])
    campaign = Campaign(owner=by, team_id=team, status=Campaign.Status.PLANNING, **data)
    campaign.code = (campaign.code or "").strip().lower()
    if campaign.code in RESERVED_CODES:
        raise ValidationError({"code": _("This code is reserved; choose another.")})
    campaign.full_clean()
    campaign.save()
    audit_record(
        actor=by,
        action="campaign.create",
        obj=campaign,
        changes={
            k: _json_value(getattr(campaign, k)) for k in ("code", "name", "budget", "start_date", "end_date")
        },
    )
    approvers = [m for m in managers() if m.pk != by.pk]
    if approvers:
        notify(
            recipients=approvers,
            kind="campaign.submitted",
            params={"name": campaign.name},
            url=campaign.get_absolute_url(),
        )
    log.info("campaign %s created by %s", campaign.code, by.username)
    return campaign


@transaction.atomic
def campaign_update(
    *, campaign: Campaign, by: User, expected_version: str | tuple[str, ...] | None = None, **fields: Any
) -> Campaign:
    """Change the plan (name, objective, KPIs, channels, budget, dates, audience).

    `expected_version` is the version the editor started from (config.concurrency): a campaign saved by
    someone else since is an EditConflict and nothing changes.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not permissions.can_edit_campaign(by, campaign):
        raise PermissionDenied(_("You cannot change this campaign."))
    check_version(campaign, expected_version)
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in PLAN_FIELDS:
            continue
        if key == "channels":
            value = _clean_channels(value or [])
        elif key == "name":
            value = name_text(value)
        old = getattr(campaign, key)
        if old != value:
            changes[key] = [_json_value(old), _json_value(value)]
            setattr(campaign, key, value)
    if not changes:
        return campaign
    if "kpi_targets" in changes and not permissions.can_edit_kpi_targets(by, campaign):
        # one rule for the plan form, the KPI form and the API (issue 21)
        raise ValidationError(_("Only the campaign's owner or a manager changes its KPI targets."))
    campaign.full_clean()
    campaign.save()
    audit_record(actor=by, action="campaign.update", obj=campaign, changes=changes)
    if "budget" in changes:
        _budget_warnings(campaign)
    return campaign


def _target_status_for_dates(campaign: Campaign, today: dt.date) -> str:
    if campaign.status == Campaign.Status.APPROVED and campaign.start_date <= today:
        return Campaign.Status.COMPLETED if campaign.end_date < today else Campaign.Status.RUNNING
    if campaign.status == Campaign.Status.RUNNING and campaign.end_date < today:
        return Campaign.Status.COMPLETED
    return campaign.status


@transaction.atomic
def campaign_approve(*, campaign: Campaign, by: User) -> Campaign:
    """A manager approves a campaign in planning; it starts running on its start date."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not permissions.can_approve_campaign(by, campaign):
        if campaign.status != Campaign.Status.PLANNING:
            raise TransitionNotAllowed(campaign.status, Campaign.Status.APPROVED)
        raise PermissionDenied(_("Only a manager can approve a campaign."))
    campaign.status = Campaign.Status.APPROVED
    campaign.approved_by = by
    campaign.approved_at = timezone.now()
    campaign.status = _target_status_for_dates(campaign, timezone.localdate())
    campaign.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
    audit_record(
        actor=by, action="campaign.approve", obj=campaign, changes={"status": ["planning", campaign.status]}
    )
    notify(
        recipients=[campaign.owner],
        kind="campaign.approved",
        params={"name": campaign.name},
        url=campaign.get_absolute_url(),
    )
    log.info("campaign %s approved by %s", campaign.code, by.username)
    return campaign


MANUAL_TRANSITIONS = {
    Campaign.Status.APPROVED: {Campaign.Status.RUNNING, Campaign.Status.COMPLETED},
    Campaign.Status.RUNNING: {Campaign.Status.COMPLETED},
    Campaign.Status.COMPLETED: {Campaign.Status.RUNNING},
}


@transaction.atomic
def campaign_set_status(*, campaign: Campaign, to: str, by: User) -> Campaign:
    """Move between running and completed by hand; from then on the dates no longer drive it."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not permissions.can_change_status(by, campaign) or to not in MANUAL_TRANSITIONS.get(
        campaign.status, ()
    ):
        raise TransitionNotAllowed(campaign.status, to)
    old = campaign.status
    campaign.status = to
    campaign.status_manual = True
    campaign.save(update_fields=["status", "status_manual", "updated_at"])
    audit_record(
        actor=by, action="campaign.status", obj=campaign, changes={"status": [old, to], "manual": True}
    )
    return campaign


def campaigns_follow_dates(*, today: dt.date | None = None) -> int:
    """Approved campaigns start running on their start date and complete after their end date.

    Campaigns whose status was set by hand are left alone. Returns how many changed.
    """
    today = today or timezone.localdate()
    due = Campaign.objects.filter(status_manual=False).filter(
        Q(status=Campaign.Status.APPROVED, start_date__lte=today)
        | Q(status=Campaign.Status.RUNNING, end_date__lt=today)
    )
    changed = 0
    for campaign_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
            target = _target_status_for_dates(campaign, today)
            if target == campaign.status or campaign.status_manual:
                continue
            old = campaign.status
            campaign.status = target
            campaign.save(update_fields=["status", "updated_at"])
            audit_record(
                actor=None, action="campaign.status", obj=campaign, changes={"status": [old, target]}
            )
            changed += 1
    log.info("campaign dates followed on %s: %s changed", today, changed)
    return changed
