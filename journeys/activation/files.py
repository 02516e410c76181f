"""File destinations: a folder under settings.ACTIVATION_FILE_ROOT, confined to it (no `..`, no absolute
path, no symlink out), and CSV files written atomically (a temporary file in the same folder, then a
rename), so a reader never sees half a file."""

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _


class FolderInvalid(ValueError):
    """A folder outside the file root, or unusable; the message names the folder."""


def file_root() -> Path:
    return Path(
        str(getattr(settings, "ACTIVATION_FILE_ROOT", Path(settings.BASE_DIR) / ".data" / "activation"))
    )


def folder_error(folder: str) -> str | None:
    """Why `folder` may not be a destination's folder (None when it may): it must be a relative path
    inside ACTIVATION_FILE_ROOT."""
    if not folder:
        return _("is required for a file destination")
    if is_bucket(folder):
        return bucket_error(folder)
    if "\x00" in folder:
        return _("may not contain a NUL character")
    path = Path(folder)
    if path.is_absolute() or folder.startswith(("/", "\\")) or (len(folder) > 1 and folder[1] == ":"):
        return _("“%(folder)s” is an absolute path: give a folder relative to the file root") % {
            "folder": folder
        }
    if ".." in path.parts or ".." in folder.replace("\\", "/").split("/"):
        return _("“%(folder)s” leaves the file root (“..” is not allowed)") % {"folder": folder}
    return None


def folder_path(folder: str, *, create: bool = True) -> Path:
    """The absolute folder for a destination, checked again after resolving symlinks."""
    error = folder_error(folder)
    if error:
        raise FolderInvalid(f"folder: {error}")
    root = file_root().resolve()
    target = (root / folder).resolve()
    if target != root and root not in target.parents:
        raise FolderInvalid(
            "folder: " + _("“%(folder)s” leaves the file root (“..” is not allowed)") % {"folder": folder}
        )
    if create:
        target.mkdir(parents=True, exist_ok=True)
    return target


def csv_write_atomic(
    folder: Path, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> tuple[Path, int]:
    """Write `name` in `folder` whole or not at all; returns its path and the number of rows."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise FolderInvalid(f"file: {name}")
    handle, temp = tempfile.mkstemp(prefix=".sync-", suffix=".csv.part", dir=folder)
    count = 0
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
            out.flush()
            os.fsync(out.fileno())
        final = folder / name
        os.replace(temp, final)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return final, count


# --- S3-compatible buckets -------------------------------------------------------------------------------
# A file destination whose folder is `s3://<bucket>/<prefix>` uploads there instead. The bucket must be one
# of ACTIVATION_S3_BUCKETS (the buckets' counterpart of the file root); the prefix obeys the folder rules.
# ACTIVATION_S3_ENDPOINT_URL (MinIO, Ceph, a local server; empty = AWS), ACTIVATION_S3_REGION,
# ACTIVATION_S3_ACCESS_KEY_ID / ACTIVATION_S3_SECRET_ACCESS_KEY (empty = boto3's own credential chain).
S3_SCHEME = "s3://"


def is_bucket(folder: str) -> bool:
    return folder.startswith(S3_SCHEME)


def bucket_parts(folder: str) -> tuple[str, str]:
    bucket, _sep, prefix = folder.removeprefix(S3_SCHEME).partition("/")
    return bucket, prefix.strip("/")


def bucket_error(folder: str) -> str | None:
    bucket, prefix = bucket_parts(folder)
    allowed = list(getattr(settings, "ACTIVATION_S3_BUCKETS", []) or [])
    if bucket not in allowed:
        return _("the bucket “%(bucket)s” is not one of ACTIVATION_S3_BUCKETS (%(allowed)s)") % {
            "bucket": bucket,
            "allowed": ", ".join(allowed) or "—",
        }
    if prefix and (".." in prefix.split("/") or "\x00" in prefix or "\\" in prefix):
        return _("“%(folder)s” leaves the file root (“..” is not allowed)") % {"folder": folder}
    return None


def _s3_client() -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=getattr(settings, "ACTIVATION_S3_ENDPOINT_URL", "") or None,
        region_name=getattr(settings, "ACTIVATION_S3_REGION", "") or None,
        aws_access_key_id=getattr(settings, "ACTIVATION_S3_ACCESS_KEY_ID", "") or None,
        aws_secret_access_key=getattr(settings, "ACTIVATION_S3_SECRET_ACCESS_KEY", "") or None,
    )


def csv_upload(
    folder: str, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> tuple[str, int]:
    """Upload `name` under the bucket folder: the CSV is spooled to a temporary file first and sent in one
    PUT, which S3 makes visible whole or not at all. Returns `s3://bucket/key` and the row count."""
    error = bucket_error(folder)
    if error:
        raise FolderInvalid(f"folder: {error}")
    bucket, prefix = bucket_parts(folder)
    key = f"{prefix}/{name}" if prefix else name
    count = 0
    with tempfile.TemporaryFile(mode="w+b") as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
        text.flush()
        spool.seek(0)
        _s3_client().put_object(Bucket=bucket, Key=key, Body=spool, ContentType="text/csv")
        text.detach()
    return f"{S3_SCHEME}{bucket}/{key}", count
