"""The temporary files of a running report: one private directory per job under REPORT_WORK_DIR.

Everything a job writes before its file goes to storage lives there: our own `tmp*.xlsx` / `tmp*.csv`
and, for an XLSX written by XlsxWriter (masked reports), its `xlsxwriter.*/` directory
(report_xlsx.xlsxwriter_write puts it beside the workbook: the sheet's rows in constant-memory mode, then
the parts it zips; it removes it itself on every way out too). An XLSX whose rows Postgres renders is
zipped straight into `tmp*.xlsx`. The directory is removed on every way out of the job (done, failed, cancelled, stopped as
stale); a worker killed outright leaves it behind, and the sweep
(services.report_work_dirs_sweep: the beat task, and every report job that starts on the machine)
removes it once its job is no longer queued or running.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

JOB_DIR = re.compile(r"^job-(\d+)$")


def work_root() -> Path:
    return Path(settings.REPORT_WORK_DIR)


def job_dir_path(job_id: int) -> Path:
    return work_root() / f"job-{job_id}"


@contextmanager
def job_work_dir(job_id: int) -> Iterator[Path]:
    """A fresh directory of the job's own (mode 0700) for every temporary file it writes, XlsxWriter's
    included; removed with its contents on every way out."""
    root = work_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = job_dir_path(job_id)
    shutil.rmtree(path, ignore_errors=True)  # left by an earlier attempt at the same job
    path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def temporary_path(directory: Path, suffix: str) -> str:
    """A new empty file `tmp*<suffix>` in the job's directory."""
    with tempfile.NamedTemporaryFile(suffix=suffix, dir=directory, delete=False) as handle:
        return handle.name


def job_dirs() -> dict[int, Path]:
    """The job directories on this machine, by job id."""
    try:
        entries = list(os.scandir(work_root()))
    except FileNotFoundError:
        return {}
    found = {}
    for entry in entries:
        match = JOB_DIR.match(entry.name)
        if match is not None and entry.is_dir(follow_symlinks=False):
            found[int(match.group(1))] = Path(entry.path)
    return found


def remove_job_dirs(paths: Collection[Path]) -> int:
    """Remove these job directories with their files; returns how many."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
        log.warning("report work directory %s removed: its job is not running", path.name)
    return len(paths)
