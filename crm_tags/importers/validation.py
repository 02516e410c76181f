"""What every import checks and returns: the columns and their limits, cell shapes, timestamps, the
upload as text, and the result of a load."""

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO

from django.utils import timezone
from django.utils.translation import gettext as _

from config.csv_import import ErrorCollector, ImportRejected, RowError
from crm_tags.models import CUSTOMER_FILE_COLUMNS

CUSTOMER_COLUMNS = list(CUSTOMER_FILE_COLUMNS)
EVENT_COLUMNS = ["customer_external_id", "event_type", "occurred_at", "amount", "channel"]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_AMOUNT = Decimal("999999999999.99")
LIMITS = {"external_id": 64, "name": 200, "email": 254, "phone": 32, "city": 100, "gender": 16}
LIMITS |= {"source_channel": 64, "channel": 64, "customer_external_id": 64}


# Told the rows read so far, every PROGRESS_EVERY rows and once at the end (a browser import's job
# writes it for its progress bar); a fast path's blocks may call it from a worker thread.
ProgressCallback = Callable[[int], None]
PROGRESS_EVERY = 10_000


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int = 0
    updated: int = 0  # existing rows a load changed
    customers: int = 0
    unchanged: int = 0  # existing rows a load left as they were


def report_progress(progress: ProgressCallback | None, rows: int, *, done: bool = False) -> None:
    """Call `progress` on every PROGRESS_EVERY-th row, and at the end (`done`)."""
    if progress is not None and (done or rows % PROGRESS_EVERY == 0):
        progress(rows)


def parse_timestamp(value: str) -> datetime:
    """ISO 8601, or a plain date meaning midnight in the default time zone."""
    if len(value) == 10:
        parsed = datetime.combine(date.fromisoformat(value), time.min)
    else:
        parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def _text(upload: IO[bytes] | IO[str]) -> IO[str]:
    """A fast UTF-8 text stream (a BOM dropped) for the CSV reader; text streams pass through."""
    if isinstance(upload, io.TextIOBase):
        return upload
    raw = getattr(upload, "file", upload)
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _check_shape(number: int, record: dict, last: str, errors: ErrorCollector) -> bool:
    # DictReader fills missing cells from the end with None and files extra cells under the key None
    if None in record or record[last] is None:
        errors.add(number, "", _("The row has a different number of cells than the header."))
        return False
    return True


def _too_long(number: int, record: dict, columns: list[str], errors: ErrorCollector) -> bool:
    bad = False
    for column in columns:
        if len(record[column]) > LIMITS[column]:
            errors.add(number, column, _("Longer than %(limit)d characters.") % {"limit": LIMITS[column]})
            bad = True
    return bad


def _rewound_text(upload: IO[bytes] | IO[str]) -> IO[str]:
    """A fresh text stream over the upload from its start (for the validating path after a fast try)."""
    if isinstance(upload, io.TextIOBase):
        upload.seek(0)
        return upload
    return _text(upload)


def raise_rejected(errors: list[RowError]) -> None:
    raise ImportRejected(errors)
