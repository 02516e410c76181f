"""Celery entry points for analytics: thin, they take ids and call services."""

import logging

from celery import shared_task

from analytics import services

log = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def run_report_job(job_id: int) -> str:
    """Write one report's file; a job already taken, finished or cancelled is left alone."""
    try:
        job = services.report_job_run(job_id=job_id)
    except services.ReportJobNotRunnable:
        log.info("report job %s is not queued any more; skipped", job_id)
        return "skipped"
    return job.status


@shared_task
def fail_stale_report_jobs() -> int:
    """Beat (every 15 s): jobs whose worker died, or that nobody picked up, end as failed instead of
    running for ever, and the temporary files of stopped jobs on this machine go; returns the failed."""
    failed = services.report_jobs_fail_stale()
    services.report_work_dirs_sweep()
    return failed


@shared_task
def send_scheduled_reports() -> dict[str, int]:
    """Beat (hourly): e-mail the weekly reports that are due."""
    return services.scheduled_reports_send()


@shared_task
def compact_rollups() -> int:
    """Beat (every 10 minutes): fold the rollups' delta rows per key; returns the rows removed."""
    from analytics import rollups

    return rollups.compact()


@shared_task
def refresh_order_months(full: bool = False) -> str | None:
    """Beat: orders per customer and month and the cohort cells, when changed (every 5 minutes) or
    recomputed from scratch (hourly)."""
    from analytics import rollups

    started = rollups.refresh_cohorts(full=full)
    return started.isoformat() if started else None
