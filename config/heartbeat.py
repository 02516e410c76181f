"""A thread that writes a running job's beat on a database connection of its own while a block runs.

A job's own transaction shows nothing to others until it commits, and a job can spend minutes in one
place without reaching its next progress point; so a worker thread refreshes the job's row every
`interval` seconds. When the process dies the beats stop, and the job's stale check reads them.
Subclasses say what one beat writes (`beat`); returning False stops the beats (the job was cancelled or
ended meanwhile)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from django.db import DatabaseError, connections

log = logging.getLogger(__name__)


class JobBeat:
    """`with Subclass(job_id, interval):` beats while the block runs; stops (and closes the thread's
    connection) after."""

    label = "job"

    def __init__(self, job_id: int, interval: float) -> None:
        self.job_id = job_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{self.label}-beat-{job_id}", daemon=True)

    def beat(self) -> bool:
        """Write one beat; False when the job no longer runs."""
        raise NotImplementedError

    def __enter__(self):
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
                    running = self.beat()
                except DatabaseError:
                    # one missed beat: the next one tries again (the stale limit allows for a few)
                    log.warning("%s %s: beat not written", self.label, self.job_id, exc_info=True)
                    continue
                if not running:
                    return
        finally:
            connections.close_all()  # this thread's connections only
