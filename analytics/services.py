"""Writes for analytics: report jobs (request, run, fail when stale) and scheduled e-mail reports."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import smtplib
import tempfile
import time
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record, notify
from analytics import reports
from analytics.filters import DashboardFilters, viewer_time_zone
from analytics.models import ReportDelivery, ReportJob, ReportSubscription
from analytics.permissions import report_unmasked
from config.uploads import orphan_files_delete
from privacy import personal_data

log = logging.getLogger(__name__)

# A running job whose worker has not written a heartbeat for this long is declared dead.
STALE_RUNNING = dt.timedelta(minutes=15)
# A queued job that no worker picked up in this long will not be picked up any more.
STALE_QUEUED = dt.timedelta(hours=2)
PROGRESS_INTERVAL_SECONDS = 1.0


class ReportJobNotRunnable(Exception):
    """The job is not queued any more (already taken by a worker, finished or failed)."""


def report_dedupe_key(*, owner: User, kind: str, params: dict[str, Any], file_format: str) -> str:
    raw = json.dumps([owner.pk, kind, params, file_format], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def report_job_request(
    *, owner: User, kind: str, params: dict[str, Any], file_format: str
) -> tuple[ReportJob, bool]:
    """Queue a report, or join the same owner's identical report that is still queued or running.

    Returns (job, created). The partial unique index on active jobs makes joining safe under races.
    """
    key = report_dedupe_key(owner=owner, kind=kind, params=params, file_format=file_format)
    active = ReportJob.objects.filter(dedupe_key=key, status__in=ReportJob.ACTIVE_STATUSES)
    existing = active.first()
    if existing is not None:
        log.info("report job %s joined by %s (%s)", existing.pk, owner.pk, kind)
        return existing, False
    try:
        with transaction.atomic():
            job = ReportJob.objects.create(
                owner=owner, kind=kind, params=params, format=file_format, dedupe_key=key
            )
    except IntegrityError:
        # Someone queued the same report between our look-up and insert: join theirs.
        return active.get(), False
    audit_record(
        actor=owner,
        action="report.request",
        obj=job,
        changes={"kind": kind, "params": params, "format": file_format},
    )
    from analytics.tasks import run_report_job

    transaction.on_commit(lambda: run_report_job.delay(job.pk))
    log.info("report job %s queued by %s: %s.%s %s", job.pk, owner.pk, kind, file_format, params)
    return job, True


def _claim(job_id: int) -> ReportJob:
    now = timezone.now()
    claimed = ReportJob.objects.filter(pk=job_id, status=ReportJob.Status.QUEUED).update(
        status=ReportJob.Status.RUNNING, started_at=now, heartbeat_at=now, progress=0
    )
    if not claimed:
        raise ReportJobNotRunnable(job_id)
    return ReportJob.objects.select_related("owner").get(pk=job_id)


def report_job_run(*, job_id: int) -> ReportJob:
    """Write the report's file streamed, recording progress and a heartbeat; done or failed at the end."""
    job = _claim(job_id)
    tz = viewer_time_zone(job.owner)
    started = time.monotonic()
    try:
        source = reports.report_source(job, tz, report_unmasked(job.owner))
        total = reports.count_rows(source)
        if job.format == ReportJob.Format.XLSX:
            total = min(total, reports.XLSX_MAX_DATA_ROWS)
        ReportJob.objects.filter(pk=job.pk).update(total_rows=total)
        last_beat = [time.monotonic()]

        def progress(rows: int) -> None:
            if time.monotonic() - last_beat[0] < PROGRESS_INTERVAL_SECONDS:
                return
            last_beat[0] = time.monotonic()
            percent = min(99, int(rows * 100 / total)) if total else 0
            ReportJob.objects.filter(pk=job.pk).update(
                rows=rows, progress=percent, heartbeat_at=timezone.now()
            )

        suffix = f".{job.format}"
        with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as handle:
            temp_path = handle.name
        try:
            if job.format == ReportJob.Format.XLSX:
                rows, truncated = reports.write_xlsx(source, temp_path, progress)
            else:
                with open(temp_path, "w", encoding="utf-8", newline="") as out:
                    rows, truncated = reports.write_csv(source, out, progress)
            with open(temp_path, "rb") as data:
                name = default_storage.save(f"reports/{reports.report_filename(job)}", File(data))
        finally:
            os.unlink(temp_path)
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
        )
        if not finished:
            # The stale sweep declared this job dead while it ran (no heartbeat for STALE_RUNNING) and
            # told its owner it failed: that answer stands, the late file is thrown away.
            default_storage.delete(name)
            log.warning("report job %s finished after it was failed as stale; result discarded", job.pk)
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


def _finish_failed(job: ReportJob, error: str) -> ReportJob:
    with transaction.atomic():
        ReportJob.objects.filter(pk=job.pk).update(
            status=ReportJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        job.refresh_from_db()
        _notify_owner(job)
    return job


def _notify_owner(job: ReportJob) -> None:
    with translation.override(job.owner.language or settings.LANGUAGE_CODE):
        kind = str(ReportJob.Kind(job.kind).label)
        if job.status == ReportJob.Status.DONE:
            title = _("Your report “%(kind)s” is ready (%(rows)s rows).") % {"kind": kind, "rows": job.rows}
        else:
            title = _("Your report “%(kind)s” failed: %(error)s") % {"kind": kind, "error": job.error[:200]}
    notify(
        recipients=[job.owner],
        verb=f"report.{job.status}",
        title=title,
        url=reverse("analytics:reports"),
        email=False,
    )


@transaction.atomic
def report_jobs_fail_stale(*, now: dt.datetime | None = None) -> int:
    """Mark jobs whose worker died (no heartbeat) or that never started as failed; returns how many."""
    now = now or timezone.now()
    dead = list(
        ReportJob.objects.select_for_update(skip_locked=True)
        .select_related("owner")
        .filter(status=ReportJob.Status.RUNNING, heartbeat_at__lt=now - STALE_RUNNING)
    )
    lost = list(
        ReportJob.objects.select_for_update(skip_locked=True)
        .select_related("owner")
        .filter(status=ReportJob.Status.QUEUED, created_at__lt=now - STALE_QUEUED)
    )
    for job in dead:
        _finish_failed(job, _("The worker stopped responding; please start the report again."))
    for job in lost:
        _finish_failed(job, _("No worker picked the report up; please start it again."))
    if dead or lost:
        log.warning("report jobs failed as stale: %s running, %s queued", len(dead), len(lost))
    return len(dead) + len(lost)


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
            lines.append(f"{tile['label']}: {_percent(value) if tile['format'] == 'ratio' else value}")
        path = reverse("analytics:marketing")
    query = "&".join(f"{k}={v}" for k, v in filters.query().items())
    lines.append("")
    lines.append(f"{settings.SITE_URL}{path}?{query}")
    return subject, "\n".join(lines)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


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
                    verb="report.delivery_failed",
                    title=_("Your weekly report could not be e-mailed: %(error)s") % {"error": error[:200]},
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
    finished = (ReportJob.Status.DONE, ReportJob.Status.FAILED)
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
