"""Celery entry points for tag builds (thin: they call services)."""

import logging
from datetime import date, timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm_tags import fanout, import_jobs, ranks, services
from crm_tags.models import Tag, TagBuild
from crm_tags.value import ValueModelError
from crm_tags.value.lead_score import lead_scores_recompute
from crm_tags.value.store import value_model_fit, value_model_latest

log = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def run_tag_build(build_id: int) -> None:
    """Run one queued build (re-read: it may be gone)."""
    build = (
        TagBuild.objects.select_related("version").filter(pk=build_id, status=TagBuild.Status.QUEUED).first()
    )
    if build is None:
        return
    if fanout.fans_out(build):  # a rule over many customers: one task per customer-id range
        fanout.start(build)
        return
    services.tag_build_run(build=build)


@shared_task(acks_late=True)
def run_tag_build_part(part_id: int) -> int:
    """One customer-id range of a fanned-out build (crm_tags/fanout.py)."""
    return fanout.run_part(part_id)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def rebuild_all_tags(trigger: str = TagBuild.Trigger.MANUAL, as_of: str | None = None) -> None:
    """Rebuild every published rule tag in dependency order (after imports, or by an operator)."""
    services.tags_rebuild_all(trigger=trigger, as_of=parse_datetime(as_of) if as_of else None)


@shared_task(acks_late=True)
def scheduled_rebuilds() -> None:
    """Hourly from beat: rebuild hourly tags, and daily tags not built in the last day, in dependency order."""
    now = timezone.now()
    due = Tag.objects.filter(kind=Tag.Kind.RULE, current_version__isnull=False).filter(
        Q(schedule=Tag.Schedule.HOURLY)
        | Q(schedule=Tag.Schedule.DAILY, last_built_at__isnull=True)
        | Q(schedule=Tag.Schedule.DAILY, last_built_at__lte=now - timedelta(hours=23, minutes=30))
    )
    tags = list(due.select_related("current_version"))
    log.info("scheduled rebuild of %s tags", len(tags))
    services.tags_rebuild_all(trigger=TagBuild.Trigger.SCHEDULE, tags=tags)


@shared_task(acks_late=True)
def fail_orphaned_builds() -> int:
    """Every minute from beat: builds whose worker died (or one of whose range workers died) are shown as
    failed, never running forever."""
    return services.tag_builds_fail_orphaned() + fanout.fail_dead_parts()


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def sync_event_ranks() -> None:
    """After a rule version is saved: keep the ranks its leaves drive from (and drop unused ones)."""
    added, dropped = ranks.sync()
    log.info("event ranks: %s pairs added, %s dropped", added, dropped)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def validate_constraint(table: str, name: str) -> None:
    """After a bulk import: validate the foreign key it added NOT VALID (reads and writes go on)."""
    services.constraint_validate(table=table, name=name)


@shared_task(acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def run_import_job(job_id: int) -> str | None:
    """Load one customers or events file uploaded in the browser (a job taken or ended is left alone)."""
    job = import_jobs.import_job_run(job_id=job_id)
    return job.status if job else None


@shared_task(acks_late=True)
def fail_stale_import_jobs() -> int:
    """Every minute from beat: imports whose worker died are shown as failed, never running for ever."""
    return import_jobs.import_jobs_fail_stale()


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def recompute_customer_values(as_of: str | None = None) -> None:
    """Daily from beat (and after imports): refit the value models as of yesterday (the last whole local
    day) or the given day, and store every customer's value; data that cannot be fitted is logged."""
    day = date.fromisoformat(as_of) if as_of else timezone.localdate() - timedelta(days=1)
    try:
        value_model_fit(as_of=day)
    except ValueModelError as exc:
        log.warning("customer values as of %s not recomputed: %s", day, exc)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def recompute_lead_scores() -> None:
    """After a lead score rule changes: refresh the stored lead scores."""
    lead_scores_recompute()


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def refresh_after_import() -> None:
    """After an import: refit the stored customer values as of their day (when there are any; the daily
    job moves the day on), then rebuild every published rule tag, which may read them."""
    latest = value_model_latest()
    if latest is not None:
        try:
            value_model_fit(as_of=latest.as_of, time_unit=latest.time_unit)
        except ValueModelError as exc:
            log.warning("customer values as of %s not refreshed after an import: %s", latest.as_of, exc)
    services.tags_rebuild_all(trigger=TagBuild.Trigger.IMPORT)


@shared_task(acks_late=True)
def maintain_event_partitions() -> list[str]:
    """The months ahead exist, and rows waiting in the default partition move to their month's own
    (crm_tags.partitions); returns the partitions created."""
    from crm_tags import partitions

    return partitions.maintain()["created"]
