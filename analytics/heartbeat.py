"""A running report job's heartbeat: proof that its worker process is alive, whatever the job is doing.

The job's own progress beats come between rows; a report can spend minutes in one place without any
(counting a big table, the sort before the first row, saving a large workbook). So a thread of the
worker refreshes `heartbeat_at` every REPORT_JOB_HEARTBEAT_SECONDS on a database connection of its own;
when the process dies the beats stop, and the stale check (services.report_jobs_fail_stale) reads them.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from analytics.models import ReportJob

log = logging.getLogger(__name__)


class JobHeartbeat:
    """`with JobHeartbeat(job_id):` beats while the block runs; stops (and closes its connection) after."""

    def __init__(self, job_id: int, interval: float | None = None) -> None:
        self.job_id = job_id
        self.interval = settings.REPORT_JOB_HEARTBEAT_SECONDS if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"report-heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> JobHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    beating = ReportJob.objects.filter(
                        pk=self.job_id, status=ReportJob.Status.RUNNING
                    ).update(heartbeat_at=timezone.now())
                except DatabaseError:
                    # one missed beat: the next one tries again (the stale limit allows for a few)
                    log.warning("report job %s: heartbeat not written", self.job_id, exc_info=True)
                    continue
                if not beating:  # cancelled or failed meanwhile: the job stops at its next progress beat
                    return
        finally:
            connections.close_all()  # this thread's connections only
