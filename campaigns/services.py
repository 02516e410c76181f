"""Writes for campaigns: one transaction each, audited, side effects after commit."""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict
from decimal import Decimal
from typing import IO, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import status
from rest_framework.exceptions import APIException

from accounts.models import User
from accounts.selectors import managers
from accounts.services import audit_record, notify
from campaigns import permissions
from campaigns.abtest import VariantCounts, evaluate
from campaigns.models import (
    ABTest,
    ABVariant,
    Campaign,
    CampaignReview,
    CampaignTask,
    Conversion,
    DailyMetric,
    Touchpoint,
    UtmLink,
    channel_validator,
)
from campaigns.utm import build_utm_url, normalise
from config.concurrency import check_version
from config.csv_import import MAX_ERRORS, ErrorCollector, RowError, read_rows
from config.inputs import DECIMAL, INT32_MAX, INT64_MAX, InvalidInput, decimal_number, whole_number
from config.text import name_text

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["date", "channel", "spend", "impressions", "clicks", "leads", "conversions", "revenue"]
TOUCHPOINT_COLUMNS = ["customer_external_id", "occurred_at", "channel"]
TOUCHPOINT_OPTIONAL = ["utm_source", "utm_medium", "utm_campaign"]
CONVERSION_COLUMNS = ["customer_external_id", "occurred_at", "revenue"]
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


class TransitionNotAllowed(PermissionDenied):
    def __init__(self, current: str, to: str) -> None:
        super().__init__(
            _("A campaign cannot go from %(current)s to %(to)s.") % {"current": current, "to": to}
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


# Campaigns -------------------------------------------------------------------------------------


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


# Budget warnings -------------------------------------------------------------------------------


def _budget_warnings(campaign: Campaign) -> None:
    """Warn owner and managers once when spend reaches 80 % and once at 100 % of the budget (in a transaction)."""
    from campaigns.selectors import campaign_spend

    if not campaign.budget:
        return
    spend = campaign_spend(campaign=campaign)
    used = spend / campaign.budget
    now = timezone.now()
    for threshold, field in ((Decimal("1"), "budget_warned_100_at"), (Decimal("0.8"), "budget_warned_80_at")):
        if used >= threshold and getattr(campaign, field) is None:
            # Jumping straight past 100 % sends the 100 % warning only; the 80 % one counts as sent.
            stamps = ["budget_warned_100_at", "budget_warned_80_at"] if threshold == 1 else [field]
            for stamp in stamps:
                if getattr(campaign, stamp) is None:
                    setattr(campaign, stamp, now)
            campaign.save(update_fields=stamps)
            audit_record(
                actor=None,
                action="campaign.budget_warning",
                obj=campaign,
                changes={"threshold": str(threshold), "spend": str(spend), "budget": str(campaign.budget)},
            )
            notify(
                recipients=[campaign.owner, *managers()],
                kind="campaign.budget",
                params={
                    "name": campaign.name,
                    "pct": int(threshold * 100),
                    "spend": spend,
                    "budget": campaign.budget,
                },
                url=campaign.get_absolute_url(),
            )
            log.info("campaign %s budget warning at %s", campaign.code, threshold)
            return


# Imports ---------------------------------------------------------------------------------------


def _number_problem(text: str, exc: InvalidInput) -> str:
    """The reason shown for a refused number cell: text that is no number at all (`NaN`, `inf`, `abc`, an
    empty cell) must be a number; a number out of range or with too many decimals says so."""
    return str(exc) if DECIMAL.fullmatch(text) else _("Must be a number.")


def _parse_decimal(value: str, column: str, row: int, errors: ErrorCollector) -> Decimal | None:
    """A money cell: ASCII digits (thousands separated by commas allowed), 0 to under 10^12, 2 places."""
    text = (value or "").strip().replace(",", "")
    try:
        return decimal_number(text, minimum=0, maximum=10**12, places=2)
    except InvalidInput as exc:
        errors.add(row, column, _number_problem(text, exc))
        return None


def _parse_count(
    value: str, column: str, row: int, errors: ErrorCollector, *, maximum: int = INT64_MAX
) -> int | None:
    """A count cell: ASCII digits (thousands separated by commas allowed), from 0 to what its column holds."""
    text = (value or "").strip().replace(",", "")
    try:
        return whole_number(text, minimum=0, maximum=maximum)
    except InvalidInput as exc:
        errors.add(row, column, _number_problem(text, exc))
        return None


def _parse_channel(value: str, row: int, errors: ErrorCollector) -> str | None:
    channel = normalise(value).replace(" ", "_")
    try:
        channel_validator(channel)
    except ValidationError:
        errors.add(row, "channel", _("Use lower-case letters, digits, dots, hyphens and underscores."))
        return None
    if len(channel) > 40:
        errors.add(row, "channel", _("At most 40 characters."))
        return None
    return channel


def _parse_moment(value: str, row: int, errors: ErrorCollector) -> dt.datetime | None:
    text = (value or "").strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = dt.datetime.combine(day, dt.time()) if day else None
    except ValueError:
        moment = None
    if moment is None:
        errors.add(row, "occurred_at", _("Not a date and time (use 2026-06-18T10:30:00+08:00)."))
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class ImportNeedsConfirmation(APIException):
    """A valid file with rows that are likely mistakes (more clicks than impressions, days still to
    come): nothing is written until the person confirms them (the API's `confirm=true`)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "confirmation_required"

    def __init__(self, warnings: list[RowError], total: int | None = None) -> None:
        self.warnings = warnings[:MAX_ERRORS]
        self.total = len(warnings) if total is None else total
        summary = ngettext(
            "%(count)d row needs confirming; nothing was imported. Send the file again with confirm=true "
            "to import it as it is.",
            "%(count)d rows need confirming; nothing was imported. Send the file again with confirm=true "
            "to import it as it is.",
            self.total,
        ) % {"count": self.total}
        super().__init__(detail=summary)
        self.detail = {
            "detail": summary,
            "errors": [{**asdict(w), "code": "warning"} for w in self.warnings],
        }


def _metric_warnings(
    number: int, day: dt.date, counts: dict[str, int | None], today: dt.date
) -> list[RowError]:
    """What is unusual about a valid row: more clicks than impressions, a day after today."""
    found = []
    clicks, impressions = counts["clicks"], counts["impressions"]
    if clicks is not None and impressions is not None and clicks > impressions:
        found.append(
            RowError(
                row=number,
                column="clicks",
                message=_("More clicks (%(clicks)s) than impressions (%(impressions)s).")
                % {"clicks": clicks, "impressions": impressions},
            )
        )
    if day > today:
        found.append(
            RowError(
                row=number,
                column="date",
                message=_("%(day)s has not happened yet (today is %(today)s).")
                % {"day": day.isoformat(), "today": today.isoformat()},
            )
        )
    return found


@transaction.atomic
def metrics_import(
    *, campaign: Campaign, upload: IO[bytes] | IO[str], by: User | None, confirm: bool = False
) -> int:
    """Import daily metrics from CSV, all or nothing; the days in the file replace what was stored for them.

    A bad row rejects the file (ImportRejected). Rows that are valid but unusual (more clicks than
    impressions, a day after today) are warnings: without `confirm` the file is refused with them
    (ImportNeedsConfirmation), with it they are imported and the audit trail records them.
    """
    _header, rows = read_rows(upload, METRIC_COLUMNS)
    errors = ErrorCollector()
    warnings: list[RowError] = []  # the first MAX_ERRORS, shown; all are counted
    warned = 0
    today = timezone.localdate()
    records: list[DailyMetric] = []
    seen: dict[tuple[dt.date, str], int] = {}
    for number, record in rows:
        if None in record:
            errors.add(number, "", _("This row has more cells than the header."))
            continue
        try:
            day = parse_date((record.get("date") or "").strip())
        except ValueError:
            day = None
        if day is None:
            errors.add(number, "date", _("Not a date (use YYYY-MM-DD)."))
        channel = _parse_channel(record.get("channel") or "", number, errors)
        money = {c: _parse_decimal(record.get(c) or "", c, number, errors) for c in ("spend", "revenue")}
        counts = {
            c: _parse_count(record.get(c) or "", c, number, errors)
            for c in ("impressions", "clicks", "leads", "conversions")
        }
        if day is not None and channel is not None:
            if (day, channel) in seen:
                errors.add(
                    number,
                    "channel",
                    _("Same date and channel as row %(row)s.") % {"row": seen[(day, channel)]},
                )
            seen[(day, channel)] = number
        if errors.full:
            break
        if not errors.errors:
            found = _metric_warnings(number, day, counts, today)
            warned += len(found)
            if len(warnings) < MAX_ERRORS:
                warnings += found
            records.append(DailyMetric(campaign=campaign, date=day, channel=channel, **money, **counts))
    errors.raise_if_any()
    if warned and not confirm:
        raise ImportNeedsConfirmation(warnings, total=warned)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    days = sorted({r.date for r in records})
    replaced, _deleted = DailyMetric.objects.filter(campaign=campaign, date__in=days).delete()
    DailyMetric.objects.bulk_create(records, batch_size=1000)
    audit_record(
        actor=by,
        action="campaign.metrics_import",
        obj=campaign,
        changes={
            "rows": len(records),
            "replaced": replaced,
            "from": days[0].isoformat() if days else None,
            "to": days[-1].isoformat() if days else None,
            "warnings_confirmed": [asdict(w) for w in warnings[:20]],
            "warnings_confirmed_count": warned,
        },
    )
    _budget_warnings(campaign)
    log.info("campaign %s: %s metric rows imported, %s replaced", campaign.code, len(records), replaced)
    return len(records)


def _journey_import(
    *,
    campaign: Campaign,
    upload: IO[bytes] | IO[str],
    by: User | None,
    columns: list[str],
    model: type[Touchpoint] | type[Conversion],
    more_fields: Callable[[dict[str, str], int, ErrorCollector], dict[str, Any]],
    action: str,
) -> int:
    """Touchpoints and conversions share their shape: a customer, a moment, and fields of their own."""
    _header, rows = read_rows(upload, columns)
    errors = ErrorCollector()
    records = []
    for number, record in rows:
        if None in record:
            errors.add(number, "", _("This row has more cells than the header."))
            continue
        customer = (record.get("customer_external_id") or "").strip()
        if not customer or len(customer) > 100:
            errors.add(number, "customer_external_id", _("Required, at most 100 characters."))
        moment = _parse_moment(record.get("occurred_at") or "", number, errors)
        fields = more_fields(record, number, errors)
        if errors.full:
            break
        if not errors.errors:
            records.append(
                model(campaign=campaign, customer_external_id=customer, occurred_at=moment, **fields)
            )
    errors.raise_if_any()
    model.objects.bulk_create(records, batch_size=2000)
    audit_record(actor=by, action=action, obj=campaign, changes={"rows": len(records)})
    log.info("campaign %s: %s %s rows imported", campaign.code, len(records), model.__name__)
    return len(records)


@transaction.atomic
def touchpoints_import(*, campaign: Campaign, upload: IO[bytes] | IO[str], by: User | None) -> int:
    """Import touchpoints from CSV, all or nothing (appended to those already stored)."""

    def channel_and_utm(record: dict[str, str], number: int, errors: ErrorCollector) -> dict[str, Any]:
        channel = _parse_channel(record.get("channel") or "", number, errors)
        return {"channel": channel, **{c: normalise(record.get(c) or "")[:100] for c in TOUCHPOINT_OPTIONAL}}

    return _journey_import(
        campaign=campaign,
        upload=upload,
        by=by,
        columns=TOUCHPOINT_COLUMNS,
        model=Touchpoint,
        more_fields=channel_and_utm,
        action="campaign.touchpoints_import",
    )


@transaction.atomic
def conversions_import(*, campaign: Campaign, upload: IO[bytes] | IO[str], by: User | None) -> int:
    """Import conversions from CSV, all or nothing (appended to those already stored)."""

    def revenue(record: dict[str, str], number: int, errors: ErrorCollector) -> dict[str, Any]:
        return {"revenue": _parse_decimal(record.get("revenue") or "", "revenue", number, errors)}

    return _journey_import(
        campaign=campaign,
        upload=upload,
        by=by,
        columns=CONVERSION_COLUMNS,
        model=Conversion,
        more_fields=revenue,
        action="campaign.conversions_import",
    )


# Tasks -----------------------------------------------------------------------------------------


def _require_edit(by: User, campaign: Campaign) -> None:
    if not permissions.can_edit_campaign(by, campaign):
        raise PermissionDenied(_("You cannot change this campaign."))


@transaction.atomic
def task_create(
    *, campaign: Campaign, by: User, title: str, owner: User | None = None, due_date: dt.date | None = None
) -> CampaignTask:
    """Add a task to a campaign's plan."""
    _require_edit(by, campaign)
    task = CampaignTask(campaign=campaign, title=title.strip(), owner=owner, due_date=due_date)
    task.full_clean()
    task.save()
    audit_record(
        actor=by,
        action="campaign.task_create",
        obj=task,
        changes={"campaign": campaign.code, "title": task.title, "due_date": _json_value(due_date)},
    )
    if owner is not None and owner != by:
        notify(
            recipients=[owner],
            kind="campaign.task",
            params={"campaign": campaign.name, "title": task.title},
            url=campaign.get_absolute_url(),
        )
    return task


@transaction.atomic
def task_set_done(*, task: CampaignTask, by: User, done: bool) -> CampaignTask:
    """Tick a task off (or reopen it)."""
    task = CampaignTask.objects.select_for_update().select_related("campaign").get(pk=task.pk)
    _require_edit(by, task.campaign)
    if task.done == done:
        return task
    task.done = done
    task.done_at = timezone.now() if done else None
    task.save(update_fields=["done", "done_at"])
    audit_record(actor=by, action="campaign.task_done" if done else "campaign.task_reopen", obj=task)
    return task


@transaction.atomic
def task_delete(*, task: CampaignTask, by: User) -> None:
    """Remove a task from the plan."""
    _require_edit(by, task.campaign)
    audit_record(actor=by, action="campaign.task_delete", obj=task, changes={"title": task.title})
    task.delete()


# UTM links -------------------------------------------------------------------------------------


@transaction.atomic
def utm_link_create(
    *,
    campaign: Campaign,
    by: User,
    url: str,
    source: str,
    medium: str,
    utm_campaign: str = "",
    content: str = "",
    term: str = "",
) -> UtmLink:
    """Build a UTM-tagged link (campaign defaults to the code) and keep it with the campaign."""
    _require_edit(by, campaign)
    values = {
        "source": normalise(source),
        "medium": normalise(medium),
        "utm_campaign": normalise(utm_campaign) or campaign.code,
        "content": normalise(content),
        "term": normalise(term),
    }
    tagged = build_utm_url(
        url=url,
        source=values["source"],
        medium=values["medium"],
        campaign=values["utm_campaign"],
        content=values["content"],
        term=values["term"],
    )
    link = UtmLink(campaign=campaign, base_url=url.strip(), url=tagged, created_by=by, **values)
    link.full_clean()
    link.save()
    audit_record(
        actor=by, action="campaign.utm_link", obj=link, changes={"campaign": campaign.code, "url": tagged}
    )
    return link


# A/B tests -------------------------------------------------------------------------------------


def _variant_count(value: Any, field: str) -> int:
    """A variant's exposures or conversions: a whole number its column holds (a ValidationError naming it)."""
    try:
        return whole_number(value, minimum=0, maximum=INT32_MAX)
    except InvalidInput as exc:
        raise ValidationError({field: exc.as_form_error()}) from exc


@transaction.atomic
def ab_test_create(
    *,
    campaign: Campaign,
    by: User,
    name: str,
    variants: list[dict[str, Any]],
    min_sample: int | None = None,
    planned_sample: int | None = None,
    baseline_rate: Decimal | float | None = None,
    sequential: str | None = "",
) -> ABTest:
    """Create an A/B test with its variants (the first is the control) and its design: the planned
    sample per variant, the expected control rate and the sequential method, fixed from now on."""
    _require_edit(by, campaign)
    sequential = sequential or ""
    if sequential and baseline_rate is None:
        # The mSPRT's mixture is sized from the plan's effect, which needs the expected rate up front.
        raise ValidationError(
            {"baseline_rate": _("A sequential test needs the expected control conversion rate.")}
        )
    if len(variants) < 2:
        raise ValidationError({"variants": _("An A/B test needs at least two variants.")})
    names = [str(v["name"]).strip() for v in variants]
    if len(set(names)) != len(names):
        raise ValidationError({"variants": _("Variant names must differ.")})
    for index, v in enumerate(variants):
        for key in ("exposures", "conversions"):
            v[key] = _variant_count(v.get(key, 0), f"variants[{index}].{key}")
        if v["conversions"] > v["exposures"]:
            raise ValidationError({"variants": _("Conversions cannot exceed exposures.")})
    test = ABTest(
        campaign=campaign,
        name=name.strip(),
        min_sample=min_sample or 1000,
        planned_sample=planned_sample,
        baseline_rate=None
        if baseline_rate is None
        else Decimal(str(baseline_rate)).quantize(Decimal("0.000001")),
        sequential=sequential,
        created_by=by,
    )
    test.full_clean()
    test.save()
    ABVariant.objects.bulk_create(
        [
            ABVariant(
                test=test,
                name=n,
                position=i,
                exposures=int(v.get("exposures", 0)),
                conversions=int(v.get("conversions", 0)),
            )
            for i, (n, v) in enumerate(zip(names, variants, strict=True))
        ]
    )
    audit_record(
        actor=by,
        action="campaign.ab_test_create",
        obj=test,
        changes={
            "campaign": campaign.code,
            "name": test.name,
            "variants": names,
            "planned_sample": test.planned_sample,
            "baseline_rate": None if test.baseline_rate is None else str(test.baseline_rate),
            "sequential": test.sequential,
        },
    )
    return test


@transaction.atomic
def ab_variant_update(*, variant: ABVariant, by: User, exposures: int, conversions: int) -> ABVariant:
    """Enter a variant's current exposures and conversions."""
    variant = ABVariant.objects.select_for_update().select_related("test__campaign").get(pk=variant.pk)
    _require_edit(by, variant.test.campaign)
    exposures = _variant_count(exposures, "exposures")
    conversions = _variant_count(conversions, "conversions")
    if conversions > exposures:
        raise ValidationError({"conversions": _("Conversions cannot exceed exposures.")})
    old = [variant.exposures, variant.conversions]
    variant.exposures, variant.conversions = exposures, conversions
    variant.save(update_fields=["exposures", "conversions"])
    audit_record(
        actor=by,
        action="campaign.ab_variant",
        obj=variant,
        changes={"counts": [old, [exposures, conversions]]},
    )
    return variant


VARIANT_COLUMNS = ["name", "exposures", "conversions"]


@transaction.atomic
def ab_variants_import(*, test: ABTest, upload: IO[bytes] | IO[str], by: User) -> int:
    """Set variants' exposures and conversions from CSV (name, exposures, conversions), all or nothing.

    A name the test does not have yet is added as a new variant after the existing ones.
    """
    test = ABTest.objects.select_for_update().select_related("campaign").get(pk=test.pk)
    _require_edit(by, test.campaign)
    _header, rows = read_rows(upload, VARIANT_COLUMNS)
    errors = ErrorCollector()
    values: dict[str, tuple[int, int]] = {}
    for number, record in rows:
        if None in record:
            errors.add(number, "", _("This row has more cells than the header."))
            continue
        name = (record.get("name") or "").strip()
        if not name or len(name) > 100:
            errors.add(number, "name", _("Required, at most 100 characters."))
        elif name in values:
            errors.add(number, "name", _("Variant names must differ."))
        exposures = _parse_count(
            record.get("exposures") or "", "exposures", number, errors, maximum=INT32_MAX
        )
        conversions = _parse_count(
            record.get("conversions") or "", "conversions", number, errors, maximum=INT32_MAX
        )
        if exposures is not None and conversions is not None and conversions > exposures:
            errors.add(number, "conversions", _("Conversions cannot exceed exposures."))
        if errors.full:
            break
        if name and exposures is not None and conversions is not None:
            values[name] = (exposures, conversions)
    errors.raise_if_any()
    existing = {v.name: v for v in test.variants.all()}
    position = max((v.position for v in existing.values()), default=-1)
    changed = []
    for name, (exposures, conversions) in values.items():
        variant = existing.get(name)
        if variant is None:
            position += 1
            ABVariant.objects.create(
                test=test, name=name, position=position, exposures=exposures, conversions=conversions
            )
        else:
            variant.exposures, variant.conversions = exposures, conversions
            changed.append(variant)
    ABVariant.objects.bulk_update(changed, ["exposures", "conversions"])
    audit_record(actor=by, action="campaign.ab_variants_import", obj=test, changes={"rows": len(values)})
    return len(values)


def ab_test_result(test: ABTest) -> dict[str, Any]:
    """The statistics for a test whose variants are loaded (prefetch `variants`)."""
    counts = [VariantCounts(v.name, v.exposures, v.conversions) for v in test.variants.all()]
    return evaluate(
        counts,
        test.min_sample,
        planned_sample=test.planned_sample,
        baseline_rate=None if test.baseline_rate is None else float(test.baseline_rate),
        sequential=test.sequential or None,
    )


# Review ----------------------------------------------------------------------------------------


@transaction.atomic
def review_save(*, campaign: Campaign, by: User, what_worked: str, what_to_improve: str) -> CampaignReview:
    """Write (or edit) the review; the first save freezes the figures and marks the campaign reviewed."""
    from campaigns.selectors import campaign_summary

    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not permissions.can_review_campaign(by, campaign):
        raise TransitionNotAllowed(campaign.status, Campaign.Status.REVIEWED)
    review = CampaignReview.objects.filter(campaign=campaign).first()
    created = review is None
    if review is None:
        review = CampaignReview(campaign=campaign, author=by, figures=campaign_summary(campaign=campaign))
        review.figures["frozen_at"] = timezone.now().isoformat()
    review.what_worked = what_worked.strip()
    review.what_to_improve = what_to_improve.strip()
    review.full_clean()
    review.save()
    old = campaign.status
    if campaign.status != Campaign.Status.REVIEWED:
        campaign.status = Campaign.Status.REVIEWED
        campaign.save(update_fields=["status", "updated_at"])
    audit_record(
        actor=by,
        action="campaign.review" if created else "campaign.review_edit",
        obj=campaign,
        changes={"status": [old, campaign.status]},
    )
    return review


def _review_markdown(campaign: Campaign, review: CampaignReview) -> str:
    f = review.figures

    def pct(value: Any) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    def num(value: Any) -> str:
        return "—" if value is None else f"{value:,.2f}"

    lines = [
        f"## {_('Figures at review time')}",
        "",
        f"| {_('Spend')} | {_('Revenue')} | ROI | ROAS | CAC | CTR | CVR | {_('Budget used')} |",
        "|---|---|---|---|---|---|---|---|",
        f"| {num(f.get('spend'))} | {num(f.get('revenue'))} | {pct(f.get('roi'))} | {num(f.get('roas'))} "
        f"| {num(f.get('cac'))} | {pct(f.get('ctr'))} | {pct(f.get('cvr'))} | {pct(f.get('budget_used_pct'))} |",
        "",
        f"## {_('What worked')}",
        "",
        review.what_worked,
        "",
        f"## {_('What to improve')}",
        "",
        review.what_to_improve,
    ]
    return "\n".join(lines)


def knowledge_base_available() -> bool:
    try:
        from knowledge_base import services as kb_services
    except ImportError:
        return False
    return hasattr(kb_services, "article_create")


@transaction.atomic
def review_publish(*, campaign: Campaign, by: User) -> Any:
    """Publish the review to the knowledge base as a retrospective article; returns the article."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not permissions.can_publish_review(by, campaign):
        raise PermissionDenied(_("Only a reviewed campaign can be published."))
    if not knowledge_base_available():
        raise PermissionDenied(_("The knowledge base is not available."))
    from knowledge_base import services as kb_services

    review = CampaignReview.objects.select_for_update().get(campaign=campaign)
    article = kb_services.article_create(
        author=by,
        title=_("Retrospective: %(name)s") % {"name": campaign.name},
        summary=(review.what_worked.splitlines() or [""])[0][:300],
        body=_review_markdown(campaign, review),
        kind="retrospective",
        language=getattr(by, "language", "zh-hans") or "zh-hans",
        related_campaign=campaign,
    )
    review.kb_article_id = article.pk
    review.published_at = timezone.now()
    review.save(update_fields=["kb_article_id", "published_at"])
    audit_record(actor=by, action="campaign.review_publish", obj=campaign, changes={"article": article.pk})
    return article


# A person's data (privacy) ----------------------------------------------------------------------


def customer_references_pseudonymise(old: str, new: str) -> dict[str, int]:
    """Rewrite a customer's external id in touchpoints and conversions (an erasure gives the person a
    surrogate id): attribution pairs them by that id, so every figure stays the same. Runs in the
    caller's transaction; returns the rows rewritten per kind."""
    touchpoints = Touchpoint.objects.filter(customer_external_id=old).update(customer_external_id=new)
    conversions = Conversion.objects.filter(customer_external_id=old).update(customer_external_id=new)
    return {"touchpoints": touchpoints, "conversions": conversions}


def _journeys_delete_batch(
    model: type[Touchpoint] | type[Conversion], before: dt.datetime, batch: int
) -> int:
    with transaction.atomic():
        ids = list(
            model.objects.filter(occurred_at__lt=before)
            .order_by("occurred_at")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return 0
        deleted, _by_model = model.objects.filter(pk__in=ids).delete()
    return deleted


def journeys_delete_before(*, before: dt.datetime, batch: int) -> dict[str, int]:
    """Retention: delete touchpoints and conversions that occurred before `before`, `batch` rows per
    transaction; returns how many of each."""
    counts = {}
    for name, model in (("touchpoints", Touchpoint), ("conversions", Conversion)):
        counts[name] = 0
        while True:
            deleted = _journeys_delete_batch(model, before, batch)
            counts[name] += deleted
            if deleted < batch:
                break
    log.info("retention: journeys before %s deleted: %s", before, counts)
    return counts
