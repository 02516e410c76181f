"""The writes people make for audience activation (pages, API and schedules alike): destination settings,
schedules, starting and retrying a sync. Each checks its permission, validates (errors name the field) and
audits; a sync's work runs in Celery after the request commits."""

from datetime import time as dtime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from config import outbound
from config.task_queue import enqueue
from crm_tags.models import Tag
from journeys import permissions
from journeys.activation import audience as aud
from journeys.activation import files
from journeys.activation.sync import SYNC_PERSONAL_FIELDS
from journeys.models import ActivationSchedule, Destination, SyncMode, SyncRun
from privacy import consent

OPEN = (SyncRun.Status.QUEUED, SyncRun.Status.RUNNING, SyncRun.Status.FAILED)


class ActivationInvalid(ValueError):
    """Bad input; `field` names it, `message` says what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SyncBusy(ValueError):
    """The audience already has a sync at this destination that is queued, running or awaiting its retry."""


def destination_errors(
    *, kind: str, url: str, folder: str, purpose: str, personal_fields: list[str] | None, by: User | None
) -> list[tuple[str, str]]:
    """(field, message) of each problem of a destination's settings (shared by create and edit)."""
    errors: list[tuple[str, str]] = []
    if kind == Destination.Kind.WEBHOOK and not url:
        errors.append(("url", _("is required for a webhook destination")))
    elif kind == Destination.Kind.WEBHOOK and (refused := outbound.url_error(url)):
        errors.append(("url", refused))
    if kind == Destination.Kind.FILE:
        error = files.folder_error(folder)
        if error:
            errors.append(("folder", error))
    if purpose and purpose not in consent.CHANNEL_PURPOSES:
        errors.append(("purpose", _("must be one of %(c)s") % {"c": ", ".join(consent.CHANNEL_PURPOSES)}))
    fields = list(personal_fields or [])
    unknown = [f for f in fields if f not in SYNC_PERSONAL_FIELDS]
    if unknown:
        errors.append(("personal_fields", _("must be among %(c)s") % {"c": ", ".join(SYNC_PERSONAL_FIELDS)}))
    elif fields and not purpose:
        errors.append(
            ("personal_fields", _("need a consent purpose: personal values go only to who agreed to it"))
        )
    elif fields and by is not None and not permissions.can_send_personal_fields(by):
        errors.append(("personal_fields", _("only someone allowed to see personal data may send it")))
    return errors


@transaction.atomic
def destination_update(*, destination: Destination, by: User, **changes: Any) -> Destination:
    """Change a destination's settings (a blank secret keeps the stored one); audited without the secret."""
    if not permissions.can_manage_destinations(by):
        raise PermissionDenied(_("You may not change destinations."))
    destination = Destination.objects.select_for_update().get(pk=destination.pk)
    secret = changes.pop("secret", "") or ""
    fields = {
        "name": destination.name,
        "kind": destination.kind,
        "url": destination.url,
        "folder": destination.folder,
        "batch_size": destination.batch_size,
        "purpose": destination.purpose,
        "customer_facing": destination.customer_facing,
        "personal_fields": list(destination.personal_fields or []),
    }
    new = {**fields, **{k: v for k, v in changes.items() if k in fields}}
    errors = destination_errors(
        kind=new["kind"],
        url=new["url"],
        folder=new["folder"],
        purpose=new["purpose"],
        # a destination that sends personal values is changed only by someone who may see them (its URL or
        # folder decides where they go)
        personal_fields=new["personal_fields"],
        by=by,
    )
    if Destination.objects.filter(name=new["name"]).exclude(pk=destination.pk).exists():
        errors.append(("name", _("a destination with this name exists")))
    if errors:
        raise ActivationInvalid(*errors[0])
    changed = {k: [fields[k], v] for k, v in new.items() if fields[k] != v}
    for key, value in new.items():
        setattr(destination, key, value)
    if secret:
        destination.secret = secret
        changed["secret_set"] = [True, True]
    destination.save()
    if changed:
        audit_record(actor=by, action="journey.destination_update", obj=destination, changes=changed)
    return destination


def _audience(*, tag: str = "", campaign: int | None = None) -> tuple[Tag | None, Any]:
    from campaigns.models import Campaign

    if bool(tag) == bool(campaign):
        raise ActivationInvalid("tag", _("give a tag slug or a campaign, one of the two"))
    if tag:
        found = Tag.objects.filter(slug=tag).first()
        if found is None:
            raise ActivationInvalid("tag", _("no tag has the slug “%(slug)s”") % {"slug": tag})
        return found, None
    found = Campaign.objects.filter(pk=campaign).first()
    if found is None:
        raise ActivationInvalid("campaign", _("no such campaign"))
    if not found.audience_include:
        raise ActivationInvalid("campaign", _("the campaign has no audience (no tags to include)"))
    return None, found


def _purpose(destination: Destination, purpose: str) -> str:
    """The consent purpose a sync filters by: the one given, else the destination's; a destination that
    names one takes no other."""
    purpose = purpose or destination.purpose
    if purpose and purpose not in consent.PURPOSES:
        raise ActivationInvalid("purpose", _("must be one of %(c)s") % {"c": ", ".join(consent.PURPOSES)})
    if destination.purpose and purpose != destination.purpose:
        raise ActivationInvalid(
            "purpose",
            _("this destination's deliveries need the purpose %(p)s") % {"p": destination.purpose},
        )
    return purpose


def _mode(mode: str) -> str:
    if mode not in SyncMode.values:
        raise ActivationInvalid("mode", _("must be one of %(c)s") % {"c": ", ".join(SyncMode.values)})
    return mode


@transaction.atomic
def sync_start(
    *,
    destination: Destination,
    by: User | None,
    tag: str = "",
    campaign: int | None = None,
    mode: str = SyncMode.DELTA,
    purpose: str = "",
    origin: str = SyncRun.Origin.API,
    schedule: ActivationSchedule | None = None,
) -> SyncRun:
    """Queue a sync of a tag or a campaign audience to the destination; the Celery task runs it after this
    transaction commits. Refused (SyncBusy) while the same audience has an open sync there."""
    if by is not None and not permissions.can_sync_audience(by):
        raise PermissionDenied(_("You may not start audience syncs."))
    found_tag, found_campaign = _audience(tag=tag, campaign=campaign)
    mode, purpose = _mode(mode), _purpose(destination, purpose)
    audience = aud.audience_of_tag(found_tag) if found_tag else aud.audience_of_campaign(found_campaign)
    # the destination's row orders concurrent starts: at most one open sync per audience and purpose
    Destination.objects.select_for_update().filter(pk=destination.pk).first()
    key = audience.key(purpose)
    open_run = SyncRun.objects.filter(destination=destination, audience=key, status__in=OPEN).first()
    if open_run is not None:
        raise SyncBusy(
            _("sync %(id)s of this audience is %(status)s: retry it or wait for it to finish")
            % {"id": open_run.pk, "status": open_run.get_status_display()}
        )
    run = SyncRun.objects.create(
        destination=destination,
        schedule=schedule,
        tag=found_tag,
        campaign=found_campaign,
        audience=key,
        audience_label=audience.label,
        mode=mode,
        purpose=purpose,
        origin=origin,
        requested_by=by if by is not None and by.pk else None,
    )
    audit_record(
        actor=by,
        action="journey.audience_sync",
        obj=run,
        changes={"destination": destination.pk, "audience": key, "mode": mode},
    )
    enqueue("journeys.tasks.activation_sync", run.pk)
    return run


@transaction.atomic
def sync_retry(*, run: SyncRun, by: User | None) -> SyncRun:
    """Queue a failed sync again: it re-sends only what got no 2xx (same bodies and keys)."""
    if by is not None and not permissions.can_sync_audience(by):
        raise PermissionDenied(_("You may not retry audience syncs."))
    run = SyncRun.objects.select_for_update().get(pk=run.pk)
    if run.status != SyncRun.Status.FAILED:
        raise SyncBusy(
            _("only a failed sync can be retried (this one is %(status)s)")
            % {"status": run.get_status_display()}
        )
    run.status = SyncRun.Status.QUEUED
    run.save(update_fields=["status"])
    audit_record(actor=by, action="journey.audience_sync_retry", obj=run, changes={"attempts": run.attempts})
    enqueue("journeys.tasks.activation_sync", run.pk)
    return run


@transaction.atomic
def schedule_create(
    *,
    destination: Destination,
    by: User,
    cadence: str,
    tag: str = "",
    campaign: int | None = None,
    mode: str = SyncMode.DELTA,
    purpose: str = "",
    at: dtime | None = None,
) -> ActivationSchedule:
    """Subscribe an audience to a destination: after each build, hourly, or daily at a company time."""
    if not permissions.can_manage_destinations(by):
        raise PermissionDenied(_("You may not schedule audience syncs."))
    found_tag, found_campaign = _audience(tag=tag, campaign=campaign)
    mode, purpose = _mode(mode), _purpose(destination, purpose)
    if cadence not in ActivationSchedule.Cadence.values:
        raise ActivationInvalid(
            "cadence", _("must be one of %(c)s") % {"c": ", ".join(ActivationSchedule.Cadence.values)}
        )
    if cadence == ActivationSchedule.Cadence.DAILY and at is None:
        raise ActivationInvalid("at", _("a daily sync needs a time of day (HH:MM)"))
    if cadence == ActivationSchedule.Cadence.AFTER_BUILD and found_campaign is not None:
        raise ActivationInvalid(
            "cadence", _("after each build applies to a tag; sync a campaign hourly or daily")
        )
    schedule = ActivationSchedule.objects.create(
        destination=destination,
        tag=found_tag,
        campaign=found_campaign,
        mode=mode,
        purpose=purpose,
        cadence=cadence,
        at=at if cadence == ActivationSchedule.Cadence.DAILY else None,
        created_by=by,
    )
    audit_record(
        actor=by,
        action="journey.activation_schedule_create",
        obj=schedule,
        changes={
            "destination": destination.pk,
            "tag": tag,
            "campaign": campaign,
            "cadence": cadence,
            "mode": mode,
        },
    )
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: ActivationSchedule, by: User) -> None:
    if not permissions.can_manage_destinations(by):
        raise PermissionDenied(_("You may not change audience schedules."))
    audit_record(
        actor=by,
        action="journey.activation_schedule_delete",
        obj=schedule,
        changes={"destination": schedule.destination_id},
    )
    schedule.delete()
