"""A running report job's heartbeat: proof that its worker process is alive, whatever the job is doing.

The job's own progress beats come between rows; a report can spend minutes in one place without any
(counting a big table, the sort before the first row, saving a large workbook). So a thread of the
worker refreshes `heartbeat_at` every REPORT_JOB_HEARTBEAT_SECONDS on a database connection of its own;
when the process dies the beats stop, and the stale check (services.report_jobs_fail_stale) reads them.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from analytics.models import ReportJob
from config.heartbeat import JobBeat


class JobHeartbeat(JobBeat):
    """`with JobHeartbeat(job_id):` beats while the block runs; stops (and closes its connection) after."""

    label = "report job"

    def __init__(self, job_id: int, interval: float | None = None) -> None:
        super().__init__(job_id, settings.REPORT_JOB_HEARTBEAT_SECONDS if interval is None else interval)

    def beat(self) -> bool:
        # cancelled or failed meanwhile: the job stops at its next progress beat
        return bool(
            ReportJob.objects.filter(pk=self.job_id, status=ReportJob.Status.RUNNING).update(
                heartbeat_at=timezone.now()
            )
        )
