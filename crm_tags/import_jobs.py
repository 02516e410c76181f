"""Customer and event imports started in the browser: the upload is stored, a Celery job loads it through
the same services as the API (all or nothing), writing its progress while it runs, and ends with a
summary or every bad row. Writes (`import_job_*`) and the owner-scoped reads the pages use."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from config.csv_import import ImportRejected
from config.heartbeat import JobBeat
from config.task_queue import enqueue
from config.uploads import random_storage_name, safe_display_name
from crm_tags import permissions, services
from crm_tags.models import ImportJob
from privacy import personal_data

log = logging.getLogger(__name__)

STORAGE_FOLDER = "imports"
PROGRESS_SECONDS = 1.0  # how often the running job's progress and heartbeat are written
STALE_RUNNING = timedelta(minutes=2)  # no heartbeat for this long: the worker died
STALE_QUEUED = timedelta(hours=1)  # never picked up
JOBS_LISTED = 20

IMPORTERS = {
    ImportJob.Kind.CUSTOMERS: services.customers_import,
    ImportJob.Kind.EVENTS: services.events_import,
}


# --- writes ------------------------------------------------------------------------------------------


def import_job_create(*, kind: str, upload: UploadedFile, by: User) -> ImportJob:
    """Store the uploaded CSV (moved from its temporary file, never read into memory) and queue its job."""
    if not permissions.can_import(by):
        raise PermissionDenied(_("You may not import customers or events."))
    name = default_storage.save(random_storage_name(STORAGE_FOLDER, upload.name or ""), upload)
    try:
        with transaction.atomic():
            job = ImportJob.objects.create(
                owner=by,
                kind=kind,
                file=name,
                file_name=safe_display_name(upload.name),
                size=upload.size or 0,
            )
            audit_record(actor=by, action="crm.import_job_create", obj=job, changes={"kind": kind})
            enqueue("crm_tags.tasks.run_import_job", job.pk)
    except BaseException:
        default_storage.delete(name)
        raise
    log.info("import job %s queued by %s: %s, %s bytes", job.pk, by.pk, kind, job.size)
    return job


class ImportProgress(JobBeat):
    """The importer's progress callback: it only records the rows read; the beat thread writes them with
    a heartbeat every PROGRESS_SECONDS on a connection of its own, since the import's transaction shows
    nothing to others until it commits."""

    label = "import job"

    def __init__(self, job_id: int, interval: float = PROGRESS_SECONDS) -> None:
        super().__init__(job_id, interval)
        self.rows = 0

    def __call__(self, rows: int) -> None:
        self.rows = rows

    def beat(self) -> bool:
        return bool(
            ImportJob.objects.filter(pk=self.job_id, status=ImportJob.Status.RUNNING).update(
                rows_read=self.rows, heartbeat_at=timezone.now()
            )
        )


def _count_lines(handle: IO[bytes]) -> int:
    """Data rows of the file as its line count less the header (an estimate: quoted cells may hold line
    breaks), read in blocks."""
    lines, last = 0, b"\n"
    while block := handle.read(1 << 20):
        lines += block.count(b"\n")
        last = block[-1:]
    handle.seek(0)
    return max(0, lines + (last != b"\n") - 1)


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Load a queued job's file with its owner's rights; done with the counts, rejected with every bad
    row (nothing written), or failed with a reason fit for any reader. The stored file goes either way."""
    now = timezone.now()
    if not ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=now, heartbeat_at=now
    ):
        log.info("import job %s is not queued any more; skipped", job_id)
        return None
    job = ImportJob.objects.select_related("owner").get(pk=job_id)
    progress = ImportProgress(job.pk)
    end: dict = {}
    try:
        with default_storage.open(job.file.name, "rb") as handle:
            ImportJob.objects.filter(pk=job.pk).update(total_rows=_count_lines(handle))
            with progress:
                result = IMPORTERS[job.kind](upload=handle, by=job.owner, progress=progress)
        end = {
            "status": ImportJob.Status.DONE,
            "rows_read": result.rows,
            "added": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "customers": result.customers,
        }
    except ImportRejected as exc:
        end = {
            "status": ImportJob.Status.REJECTED,
            "rows_read": progress.rows,
            "errors": [{"row": e.row, "column": e.column, "message": e.message} for e in exc.errors],
            "error_total": exc.total,
        }
    except Exception as exc:  # noqa: BLE001 - any failure must end the job as failed, with its reason
        log.exception("import job %s failed", job.pk)
        # a database error can quote a row's values: the reason is scrubbed before anyone reads it
        end = {"status": ImportJob.Status.FAILED, "failure": personal_data.scrub_text(str(exc))[:2000]}
    finally:
        default_storage.delete(job.file.name)
        end |= {"file": "", "finished_at": timezone.now(), "heartbeat_at": timezone.now()}
        ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(**end)
    job.refresh_from_db()
    log.info("import job %s %s: %s rows", job.pk, job.status, job.rows_read)
    return job


def import_jobs_fail_stale(*, now: datetime | None = None) -> int:
    """Jobs whose worker died (no heartbeat for STALE_RUNNING) or that nobody picked up end as failed,
    never running for ever (their transaction rolled back: nothing was written). Returns how many."""
    now = now or timezone.now()
    stale = ImportJob.objects.filter(
        status=ImportJob.Status.RUNNING, heartbeat_at__lt=now - STALE_RUNNING
    ) | ImportJob.objects.filter(status=ImportJob.Status.QUEUED, created_at__lt=now - STALE_QUEUED)
    failed = 0
    for job in stale.only("pk", "file"):
        failed += ImportJob.objects.filter(pk=job.pk, status__in=ImportJob.ACTIVE_STATUSES).update(
            status=ImportJob.Status.FAILED,
            failure=_("The import stopped before it finished; nothing was written. Upload the file again."),
            finished_at=now,
            file="",
        )
        if job.file:
            default_storage.delete(job.file.name)
    if failed:
        log.warning("%s stale import job(s) marked failed", failed)
    return failed


# --- reads -------------------------------------------------------------------------------------------


def import_jobs_for_user(*, user: User) -> QuerySet[ImportJob]:
    """The user's latest import jobs (none for someone who may not import)."""
    if not permissions.can_import(user):
        return ImportJob.objects.none()
    return ImportJob.objects.filter(owner=user).defer("errors")[:JOBS_LISTED]


def import_job_get_for_user(*, user: User, pk: int) -> ImportJob:
    """One of the user's own jobs; PermissionDenied for someone who may not import, 404 for another's."""
    if not permissions.can_import(user):
        raise PermissionDenied(_("You may not import customers or events."))
    job = ImportJob.objects.filter(pk=pk, owner=user).first()
    if job is None:
        raise Http404
    return job


@dataclass(frozen=True)
class JobProgress:
    """What the progress bar shows: rows read of about how many, rows a second, seconds left."""

    rows: int
    total: int | None
    percent: int
    rows_per_second: int | None
    seconds_left: int | None


def import_job_progress(job: ImportJob, *, now: datetime | None = None) -> JobProgress:
    """The job's progress from its last beat: the rate over the time it has run, the time left at it."""
    now = now or timezone.now()
    total = job.total_rows
    if not job.is_active:
        percent = 100
    else:  # 99 at most: the merge after the last row still takes a while
        percent = min(99, job.rows_read * 100 // total) if total else 0
    elapsed = (min(now, job.heartbeat_at or now) - job.started_at).total_seconds() if job.started_at else 0
    rate = job.rows_read / elapsed if elapsed > 0 and job.rows_read else None
    left = int(max(0, total - job.rows_read) / rate) if rate and total and job.is_active else None
    return JobProgress(job.rows_read, total, percent, int(rate) if rate else None, left)


def import_job_errors_for(job: ImportJob, *, viewer: User) -> list[dict]:
    """The job's bad rows as the viewer may read them: a message (or column) quoting an e-mail address
    or phone number from the file is masked without view_pii."""
    return [
        {
            "row": error["row"],
            "column": personal_data.text_for(error["column"], viewer=viewer),
            "message": personal_data.text_for(error["message"], viewer=viewer),
        }
        for error in job.errors
    ]


def import_job_error_rows(job: ImportJob, *, viewer: User) -> Iterator[list]:
    """Rows of the downloadable error file (row, column, message), masked for the viewer."""
    for error in import_job_errors_for(job, viewer=viewer):
        yield [error["row"], error["column"], error["message"]]
