"""When scheduled syncs run: the beat task (`journeys.tasks.activation_schedules`, every minute) starts the
hourly and daily ones that are due, and a tag build that commits with entries or exits starts the tag's
"after each build" ones. An audience whose last sync failed is retried instead of synced anew (its delta
baseline has not moved), and one with a sync queued or running is left alone."""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from journeys.activation import services
from journeys.guards import company_zone
from journeys.models import ActivationSchedule, SyncRun

log = logging.getLogger(__name__)


def is_due(schedule: ActivationSchedule, now: datetime) -> bool:
    last = schedule.last_run_at
    if schedule.cadence == ActivationSchedule.Cadence.HOURLY:
        return last is None or now - last >= timedelta(hours=1)
    if schedule.cadence == ActivationSchedule.Cadence.DAILY and schedule.at is not None:
        local = now.astimezone(company_zone())
        moment = datetime.combine(local.date(), schedule.at, tzinfo=company_zone())
        if moment > now:
            moment -= timedelta(days=1)
        return last is None or last < moment
    return False


def schedule_fire(schedule: ActivationSchedule, *, now: datetime, origin: str) -> SyncRun | None:
    """Start the schedule's sync (or retry its failed one); None when one is queued or running."""
    with transaction.atomic():
        locked = (
            ActivationSchedule.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("destination", "tag")
            .filter(pk=schedule.pk)
            .first()
        )
        if locked is None:
            return None
        kind, pk = ("tag", locked.tag_id) if locked.tag_id else ("campaign", locked.campaign_id)
        key = f"{kind}:{pk}:{locked.purpose or locked.destination.purpose}"
        open_run = (
            SyncRun.objects.filter(
                destination_id=locked.destination_id, audience=key, status__in=services.OPEN
            )
            .order_by("-pk")
            .first()
        )
        if open_run is not None and open_run.status != SyncRun.Status.FAILED:
            return None
        locked.last_run_at = now
        locked.save(update_fields=["last_run_at"])
        try:
            if open_run is not None:
                return services.sync_retry(run=open_run, by=None)
            return services.sync_start(
                destination=locked.destination,
                by=None,
                tag=locked.tag.slug if locked.tag_id else "",
                campaign=locked.campaign_id,
                mode=locked.mode,
                purpose=locked.purpose,
                origin=origin,
                schedule=locked,
            )
        except (services.ActivationInvalid, services.SyncBusy) as exc:
            log.warning("activation schedule %s not started: %s", locked.pk, exc)
            return None


def schedules_run(*, now: datetime | None = None) -> int:
    """Fail runs a dead worker left running, then start every due hourly / daily schedule; returns how many syncs were started or retried."""
    from journeys.activation.sync import stale_runs_fail

    now = now or timezone.now()
    stale_runs_fail(now=now)
    started = 0
    schedules = ActivationSchedule.objects.filter(
        enabled=True, cadence__in=[ActivationSchedule.Cadence.HOURLY, ActivationSchedule.Cadence.DAILY]
    ).select_related("destination", "tag")
    for schedule in schedules:
        if is_due(schedule, now) and schedule_fire(schedule, now=now, origin=SyncRun.Origin.SCHEDULE):
            started += 1
    return started


def after_build(*, tag_id: int, now: datetime | None = None) -> int:
    """A build of the tag committed: start its "after each build" schedules."""
    now = now or timezone.now()
    started = 0
    schedules = ActivationSchedule.objects.filter(
        enabled=True, cadence=ActivationSchedule.Cadence.AFTER_BUILD, tag_id=tag_id
    ).select_related("destination", "tag")
    for schedule in schedules:
        if schedule_fire(schedule, now=now, origin=SyncRun.Origin.BUILD):
            started += 1
    return started


def tag_build_saved(sender: object, instance: object, created: bool, **kwargs: object) -> None:
    """post_save of TagBuild: a build done with entries or exits queues its tag's after-build syncs (after the
    build's transaction commits; only when such a schedule exists)."""
    from config.task_queue import enqueue
    from crm_tags.models import TagBuild

    if instance.status != TagBuild.Status.DONE or not (instance.entered or instance.exited):
        return
    if ActivationSchedule.objects.filter(
        enabled=True, cadence=ActivationSchedule.Cadence.AFTER_BUILD, tag_id=instance.tag_id
    ).exists():
        enqueue("journeys.tasks.activation_after_build", instance.tag_id)


def connect_signals() -> None:
    from django.db.models.signals import post_save

    from crm_tags.models import TagBuild

    post_save.connect(tag_build_saved, sender=TagBuild, dispatch_uid="journeys-activation-after-build")
