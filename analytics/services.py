"""Writes for analytics: report jobs (request within a quota, run with a heartbeat, cancel, fail when
stale) and scheduled e-mail reports."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import smtplib
import time
import zoneinfo
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record, notify
from analytics import report_files, reports
from analytics.filters import DashboardFilters, viewer_time_zone
from analytics.heartbeat import JobHeartbeat
from analytics.models import ReportDelivery, ReportJob, ReportSubscription
from analytics.permissions import can_cancel_report, report_unmasked
from campaigns.figures import PERCENT, format_figure
from config.db_router import replica_reads
from config.task_queue import enqueue
from config.uploads import orphan_files_delete
from privacy import personal_data

log = logging.getLogger(__name__)

# A queued job that no worker picked up in this long will not be picked up any more.
STALE_QUEUED = dt.timedelta(hours=2)
PROGRESS_INTERVAL_SECONDS = 1.0
# pg_advisory_xact_lock(QUOTA_LOCK_NAMESPACE, owner id): one report request per person at a time
QUOTA_LOCK_NAMESPACE = 7401


def stale_running_limit() -> dt.timedelta:
    """A running job whose heartbeat is older than this is dead (REPORT_JOB_STALE_SECONDS)."""
    return dt.timedelta(seconds=settings.REPORT_JOB_STALE_SECONDS)


class ReportJobNotRunnable(Exception):
    """The job is not queued any more (already taken by a worker, finished, failed or cancelled)."""


class ReportJobStopped(Exception):
    """The job stopped being `running` while its worker wrote it (cancelled, or failed as stale)."""


class ReportJobFinished(Exception):
    """The job has already ended: there is nothing to cancel."""

    def __init__(self, job: ReportJob) -> None:
        super().__init__(job.pk)
        self.job = job


class ReportQuotaExceeded(Exception):
    """The person already has REPORT_JOBS_PER_USER jobs queued or running (`active`, oldest first)."""

    def __init__(self, limit: int, active: list[ReportJob]) -> None:
        super().__init__(limit)
        self.limit = limit
        self.active = active

    def message(self) -> str:
        """What the person is told: the limit, and their reports in progress by name."""
        return _(
            "You already have %(count)s reports in progress (at most %(limit)s at once): %(jobs)s. "
            "Wait for one to end, or cancel one."
        ) % {
            "count": len(self.active),
            "limit": self.limit,
            "jobs": "; ".join(report_job_label(job) for job in self.active),
        }


def report_job_label(job: ReportJob) -> str:
    """`Customers #12 (XLSX, Running, 45 %)`: a job named for its owner."""
    return _("%(kind)s #%(id)s (%(format)s, %(status)s, %(progress)s %%)") % {
        "kind": job.get_kind_display(),
        "id": job.pk,
        "format": job.format.upper(),
        "status": job.get_status_display(),
        "progress": job.progress,
    }


def report_dedupe_key(*, owner: User, kind: str, params: dict[str, Any], file_format: str) -> str:
    raw = json.dumps([owner.pk, kind, params, file_format], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def report_job_request(
    *, owner: User, kind: str, params: dict[str, Any], file_format: str
) -> tuple[ReportJob, bool]:
    """Queue a report, or join the same owner's identical report that is still queued or running.

    The owner's jobs whose worker died (stale heartbeat) are failed first, so asking again starts a new
    job instead of joining a dead one. A person has at most REPORT_JOBS_PER_USER jobs queued or running:
    a new one beyond that raises ReportQuotaExceeded (joining is always allowed). Returns (job, created).
    """
    key = report_dedupe_key(owner=owner, kind=kind, params=params, file_format=file_format)
    report_jobs_fail_stale(owner=owner)
    with transaction.atomic():
        # One request per person at a time until commit: the count below cannot be raced past the limit.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [QUOTA_LOCK_NAMESPACE, owner.pk])
        active = ReportJob.objects.filter(dedupe_key=key, status__in=ReportJob.ACTIVE_STATUSES)
        existing = active.first()
        if existing is not None:
            log.info("report job %s joined by %s (%s)", existing.pk, owner.pk, kind)
            return existing, False
        mine = list(
            ReportJob.objects.filter(owner=owner, status__in=ReportJob.ACTIVE_STATUSES).order_by(
                "created_at", "id"
            )
        )
        limit = settings.REPORT_JOBS_PER_USER
        if len(mine) >= limit:
            log.info("report request by %s refused: %s jobs active (limit %s)", owner.pk, len(mine), limit)
            raise ReportQuotaExceeded(limit=limit, active=mine)
        try:
            with transaction.atomic():
                job = ReportJob.objects.create(
                    owner=owner, kind=kind, params=params, format=file_format, dedupe_key=key
                )
        except IntegrityError:
            # The same report queued between our look-up and insert (the partial unique index): join it.
            return active.get(), False
        audit_record(
            actor=owner,
            action="report.request",
            obj=job,
            changes={"kind": kind, "params": params, "format": file_format},
        )
        enqueue("analytics.tasks.run_report_job", job.pk)
    log.info("report job %s queued by %s: %s.%s %s", job.pk, owner.pk, kind, file_format, params)
    return job, True


@transaction.atomic
def report_job_cancel(*, job: ReportJob, by: User) -> ReportJob:
    """Cancel a queued or running job: it ends now and frees its place in the quota. A running job's
    worker stops at its next progress beat and removes its temporary files; a queued one is never
    started. Raises ReportJobFinished when the job had already ended."""
    job = ReportJob.objects.select_for_update().select_related("owner").get(pk=job.pk)
    if not can_cancel_report(by, job):
        raise PermissionDenied
    if not job.is_active:
        raise ReportJobFinished(job)
    was = job.status
    job.status = ReportJob.Status.CANCELLED
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "finished_at"])
    audit_record(actor=by, action="report.cancel", obj=job, changes={"status": [was, job.status]})
    log.info("report job %s cancelled by %s while %s", job.pk, by.pk, was)
    return job


def _claim(job_id: int) -> ReportJob:
    now = timezone.now()
    claimed = ReportJob.objects.filter(pk=job_id, status=ReportJob.Status.QUEUED).update(
        status=ReportJob.Status.RUNNING, started_at=now, heartbeat_at=now, progress=0
    )
    if not claimed:
        raise ReportJobNotRunnable(job_id)
    return ReportJob.objects.select_related("owner").get(pk=job_id)


def report_job_run(*, job_id: int) -> ReportJob:
    """Write the report's file streamed, in a directory of the job's own, with progress beats and a
    heartbeat thread; done or failed at the end, or stopped at a beat when it was cancelled (or failed as
    stale) meanwhile. Its temporary files are removed on every way out."""
    report_work_dirs_sweep()
    job = _claim(job_id)
    tz = viewer_time_zone(job.owner)
    started = time.monotonic()
    try:
        # decided on the primary before the replica scope: a permission revoked a moment ago (not
        # replayed yet) must count, and an answer read there would stay cached (accounts.backends)
        unmasked = report_unmasked(job.owner)
        # the rows are read from the replica when it serves (config/db_router.py); progress writes go on
        with JobHeartbeat(job.pk), report_files.job_work_dir(job.pk) as work_dir, replica_reads() as reads:
            log.info("report job %s reads %s (lag %s s)", job.pk, reads.alias, reads.lag_seconds)
            # taken as the reading starts: on the primary, as_of() is the time it is called
            data_as_of = reads.as_of()
            rows, truncated, name = _write_report(job, tz, work_dir, unmasked)
    except ReportJobStopped:
        job.refresh_from_db()
        log.info("report job %s stopped: %s while it ran", job.pk, job.status)
        return job
    except Exception as exc:  # noqa: BLE001 - any failure must end the job as failed, with its reason
        log.exception("report job %s failed", job.pk)
        # a database error can quote a row's values: the reason is scrubbed before anyone reads it
        return _finish_failed(job, personal_data.scrub_text(str(exc)) or exc.__class__.__name__)
    with transaction.atomic():
        finished = ReportJob.objects.filter(pk=job.pk, status=ReportJob.Status.RUNNING).update(
            status=ReportJob.Status.DONE,
            progress=100,
            rows=rows,
            truncated=truncated,
            file=name,
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
            data_as_of=data_as_of,
            data_source=ReportJob.Source.REPLICA if reads.on_replica else ReportJob.Source.PRIMARY,
            replica_lag_seconds=round(reads.lag_seconds or 0.0, 3) if reads.on_replica else None,
        )
        if not finished:
            # Cancelled, or declared dead by the stale sweep (its owner told it failed), after the last
            # beat: that answer stands, the late file is thrown away.
            default_storage.delete(name)
            log.warning("report job %s finished after it ended otherwise; result discarded", job.pk)
            job.refresh_from_db()
            return job
        job.refresh_from_db()
        if job.kind in reports.PERSONAL_KINDS:
            personal_data.record_unmasked(
                viewer=job.owner, kind="report", rows=rows, what=f"report {job.pk} ({job.kind})"
            )
        _notify_owner(job)
    log.info("report job %s done: %s rows in %.2fs", job.pk, rows, time.monotonic() - started)
    return job


def _write_report(job: ReportJob, tz: str, work_dir: Path, unmasked: bool) -> tuple[int, bool, str]:
    """(rows, truncated, storage name): count, write the temporary file, save it to storage."""
    source = reports.report_source(job, tz, unmasked)
    total = reports.count_rows(source)
    if job.format == ReportJob.Format.XLSX:
        total = min(total, reports.XLSX_MAX_DATA_ROWS)
    _beat(job.pk, total_rows=total)  # a job cancelled while it counted stops here
    last_beat = [time.monotonic()]

    def progress(rows: int) -> None:
        if time.monotonic() - last_beat[0] < PROGRESS_INTERVAL_SECONDS:
            return
        last_beat[0] = time.monotonic()
        _beat(job.pk, rows=rows, progress=min(99, int(rows * 100 / total)) if total else 0)

    temp_path = report_files.temporary_path(work_dir, f".{job.format}")
    if job.format == ReportJob.Format.XLSX:
        rows, truncated = reports.write_xlsx(source, temp_path, progress)
    else:
        with open(temp_path, "w", encoding="utf-8", newline="") as out:
            rows, truncated = reports.write_csv(source, out, progress)
    _beat(job.pk)  # nothing goes to storage for a job stopped while it wrote
    with open(temp_path, "rb") as data:
        name = default_storage.save(f"reports/{reports.report_filename(job)}", File(data))
    return rows, truncated, name


def _beat(job_id: int, **fields: Any) -> None:
    """Progress and a heartbeat; ReportJobStopped when the job is no longer running (cancelled, or
    failed as stale), so the worker stops there and its temporary files go."""
    beating = ReportJob.objects.filter(pk=job_id, status=ReportJob.Status.RUNNING).update(
        heartbeat_at=timezone.now(), **fields
    )
    if not beating:
        raise ReportJobStopped(job_id)


def _finish_failed(job: ReportJob, error: str) -> ReportJob:
    """Running or queued → failed with its reason, and the owner told; a job that ended meanwhile (say
    cancelled) keeps its end."""
    with transaction.atomic():
        failed = ReportJob.objects.filter(pk=job.pk, status__in=ReportJob.ACTIVE_STATUSES).update(
            status=ReportJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        job.refresh_from_db()
        if failed:
            _notify_owner(job)
    return job


def _notify_owner(job: ReportJob) -> None:
    notify(
        recipients=[job.owner],
        kind="report.done" if job.status == ReportJob.Status.DONE else "report.failed",
        verb=f"report.{job.status}",
        params={"kind": job.kind, "rows": job.rows, "error": job.error[:200]},
        url=reverse("analytics:reports"),
        email=False,
    )


@transaction.atomic
def report_jobs_fail_stale(*, now: dt.datetime | None = None, owner: User | None = None) -> int:
    """Mark jobs whose worker died (no heartbeat for REPORT_JOB_STALE_SECONDS) or that never started as
    failed, with the reason shown to their owner; everyone's, or one owner's. Returns how many."""
    now = now or timezone.now()
    jobs = ReportJob.objects.select_for_update(skip_locked=True).select_related("owner")
    if owner is not None:
        jobs = jobs.filter(owner=owner)
    dead = list(jobs.filter(status=ReportJob.Status.RUNNING, heartbeat_at__lt=now - stale_running_limit()))
    lost = list(jobs.filter(status=ReportJob.Status.QUEUED, created_at__lt=now - STALE_QUEUED))
    for job in dead:
        silent = int((now - job.heartbeat_at).total_seconds())
        _finish_failed(
            job,
            _(
                "The worker writing this report stopped responding (no heartbeat for %(seconds)s s); "
                "start the report again."
            )
            % {"seconds": silent},
        )
    for job in lost:
        _finish_failed(job, _("No worker picked the report up; please start it again."))
    if dead or lost:
        log.warning("report jobs failed as stale: %s running, %s queued", len(dead), len(lost))
    return len(dead) + len(lost)


def report_work_dirs_sweep() -> int:
    """Remove this machine's report work directories whose job is no longer queued or running (what a
    killed worker left); returns how many. The directories are listed before the jobs are read, so a job
    claimed in between keeps its directory."""
    found = report_files.job_dirs()
    if not found:
        return 0
    active = set(
        ReportJob.objects.filter(pk__in=found, status__in=ReportJob.ACTIVE_STATUSES).values_list(
            "pk", flat=True
        )
    )
    return report_files.remove_job_dirs([path for pk, path in found.items() if pk not in active])


# Scheduled reports ---------------------------------------------------------------------------


@transaction.atomic
def subscription_save(
    *, owner: User, kind: str, weekday: int, hour: int, active: bool = True
) -> ReportSubscription:
    """Subscribe (or change the subscription) to a weekly e-mail report."""
    subscription, created = ReportSubscription.objects.update_or_create(
        owner=owner, kind=kind, defaults={"weekday": weekday, "hour": hour, "active": active}
    )
    audit_record(
        actor=owner,
        action="report_subscription.save",
        obj=subscription,
        changes={"kind": kind, "weekday": weekday, "hour": hour, "active": active, "created": created},
    )
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: ReportSubscription, by: User) -> None:
    """Stop a weekly report."""
    audit_record(
        actor=by, action="report_subscription.delete", obj=subscription, changes={"kind": subscription.kind}
    )
    subscription.delete()


def subscription_is_due(subscription: ReportSubscription, now: dt.datetime) -> bool:
    """Due on its weekday from its hour (owner's zone), once a week."""
    local = now.astimezone(zoneinfo.ZoneInfo(viewer_time_zone(subscription.owner)))
    if local.weekday() != subscription.weekday or local.hour < subscription.hour:
        return False
    return subscription.last_sent_at is None or now - subscription.last_sent_at > dt.timedelta(days=6)


def _report_body(subscription: ReportSubscription, filters: DashboardFilters) -> tuple[str, str]:
    """Subject and text of a weekly report, from the same figures the dashboards show."""
    from analytics import marketing_figures, support_figures

    lines: list[str] = []
    period = f"{filters.date_from:%Y-%m-%d} – {filters.date_to:%Y-%m-%d}"
    if subscription.kind == ReportSubscription.Kind.SUPPORT_WEEKLY:
        subject = _("Weekly support report, %(period)s") % {"period": period}
        for tile in support_figures.kpis(filters, staff=True)["tiles"]:
            lines.append(f"{tile['label']}: {tile['value']}")
        sla = support_figures.sla_attainment(filters, staff=True)
        for label, first, resolution in zip(
            sla["x"], sla["series"][0]["values"], sla["series"][1]["values"], strict=True
        ):
            lines.append(
                _("SLA %(urgency)s: first response %(first)s, resolution %(resolution)s")
                % {"urgency": label, "first": _percent(first), "resolution": _percent(resolution)}
            )
        path = reverse("analytics:support")
    else:
        subject = _("Weekly campaign report, %(period)s") % {"period": period}
        for tile in marketing_figures.kpis(filters, staff=True)["tiles"]:
            value = tile["value"]
            lines.append(f"{tile['label']}: {format_figure(value, tile['format'])}")
        path = reverse("analytics:marketing")
    query = "&".join(f"{k}={v}" for k, v in filters.query().items())
    lines.append("")
    lines.append(f"{settings.SITE_URL}{path}?{query}")
    return subject, "\n".join(lines)


def _percent(value: float | None) -> str:
    return format_figure(value, PERCENT)


def subscription_deliver(
    *, subscription: ReportSubscription, now: dt.datetime | None = None
) -> ReportDelivery:
    """E-mail one weekly report; a failure is recorded and the subscriber told in the app, never silent."""
    now = now or timezone.now()
    owner = subscription.owner
    tz = viewer_time_zone(owner)
    today = now.astimezone(zoneinfo.ZoneInfo(tz)).date()
    filters = DashboardFilters(
        date_from=today - dt.timedelta(days=7), date_to=today - dt.timedelta(days=1), tz=tz
    )
    with translation.override(owner.language or settings.LANGUAGE_CODE):
        subject, body = _report_body(subscription, filters)
        error = ""
        if not owner.email:
            error = _("You have no e-mail address on your profile.")
        else:
            try:
                EmailMessage(subject=f"[MarTech Hub] {subject}", body=body, to=[owner.email]).send(
                    fail_silently=False
                )
            except (smtplib.SMTPException, OSError) as exc:
                error = f"{exc.__class__.__name__}: {exc}"
        with transaction.atomic():
            delivery = ReportDelivery.objects.create(
                subscription=subscription,
                status=ReportDelivery.Status.FAILED if error else ReportDelivery.Status.SENT,
                period_start=filters.date_from,
                period_end=filters.date_to,
                recipient=owner.email,
                error=error[:2000],
            )
            if error:
                log.warning("weekly report %s to %s failed: %s", subscription.pk, owner.email, error)
                notify(
                    recipients=[owner],
                    kind="report.delivery_failed",
                    params={"error": error[:200]},
                    url=reverse("analytics:subscriptions"),
                    email=False,
                )
            else:
                ReportSubscription.objects.filter(pk=subscription.pk).update(last_sent_at=now)
                log.info("weekly report %s sent to %s", subscription.pk, owner.email)
    return delivery


def scheduled_reports_send(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Send every weekly report that is due (beat calls this hourly); returns counts of sent and failed."""
    now = now or timezone.now()
    counts = {"sent": 0, "failed": 0}
    subscriptions = ReportSubscription.objects.filter(active=True, owner__is_active=True).select_related(
        "owner"
    )
    for subscription in subscriptions:
        if not subscription_is_due(subscription, now):
            continue
        delivery = subscription_deliver(subscription=subscription, now=now)
        counts[delivery.status] += 1
    return counts


# A person's data (privacy) and retention -------------------------------------------------------------


def customer_order_months_reassign(*, old: int, new: int) -> int:
    """Hand a customer's order months to another customer id (an erasure's surrogate) so cohort figures
    stay the same; in the caller's transaction. Returns the rows moved."""
    from analytics.models import CustomerOrderMonth

    return CustomerOrderMonth.objects.filter(customer_id=old).update(customer_id=new)


def report_files_delete_before(*, before: dt.datetime, batch: int) -> dict[str, int]:
    """Retention: finished report jobs older than `before` lose their file and their row (a report can
    hold customers' contact data); files left in the reports folder by no job, as old, go too. Returns
    the jobs and files deleted."""
    jobs = files = 0
    finished = (ReportJob.Status.DONE, ReportJob.Status.FAILED, ReportJob.Status.CANCELLED)
    while True:
        with transaction.atomic():
            old = list(
                ReportJob.objects.select_for_update(skip_locked=True)
                .filter(status__in=finished, created_at__lt=before)
                .order_by("created_at")
                .values_list("pk", "file")[:batch]
            )
            for _pk, name in old:
                if name and default_storage.exists(name):
                    default_storage.delete(name)
                    files += 1
            ReportJob.objects.filter(pk__in=[pk for pk, _name in old]).delete()
        jobs += len(old)
        if len(old) < batch:
            break
    kept = set(ReportJob.objects.exclude(file="").values_list("file", flat=True))
    files += orphan_files_delete(folder="reports", kept=kept, before=before, limit=batch)
    log.info("retention: %s report jobs and %s files before %s deleted", jobs, files, before)
    return {"jobs": jobs, "files": files}
