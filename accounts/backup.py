"""Backup and restore of the whole portal: the database (pg_dump custom format) plus uploaded files."""

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)
DUMP_NAME = "database.dump"
MEDIA_DIR = "media"


class BackupError(RuntimeError):
    pass


def _pg_env_and_args() -> tuple[dict[str, str], list[str]]:
    db = settings.DATABASES["default"]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    args = [
        "-h",
        db.get("HOST") or "127.0.0.1",
        "-p",
        str(db.get("PORT") or 5432),
        "-U",
        db.get("USER") or "postgres",
    ]
    return env, args


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[:2000]}")


def backup_create(*, output: Path) -> Path:
    """Write one .tar archive holding the database dump and the media directory; returns its path."""
    env, args = _pg_env_and_args()
    name = settings.DATABASES["default"]["NAME"]
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        dump = Path(work, DUMP_NAME)
        _run(["pg_dump", *args, "--format=custom", "--no-owner", "--file", str(dump), name], env)
        partial = output.with_suffix(output.suffix + ".partial")
        with tarfile.open(partial, "w") as archive:
            archive.add(dump, arcname=DUMP_NAME)
            media = Path(settings.MEDIA_ROOT)
            if media.exists():
                archive.add(media, arcname=MEDIA_DIR)
        partial.replace(output)  # a backup file either exists whole or not at all
    log.info("backup written to %s", output)
    return output


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for member in archive.getmembers():
        path = Path(member.name)
        if path.is_absolute() or ".." in path.parts or member.issym() or member.islnk():
            raise BackupError(f"unsafe path in backup archive: {member.name}")
        members.append(member)
    return members


def backup_restore(*, archive_path: Path) -> None:
    """Replace the database and media files with the archive's (pg_restore --clean)."""
    env, args = _pg_env_and_args()
    name = settings.DATABASES["default"]["NAME"]
    with tempfile.TemporaryDirectory() as work, tarfile.open(archive_path, "r") as archive:
        members = _safe_members(archive)
        if DUMP_NAME not in {m.name for m in members}:
            raise BackupError(f"{archive_path} holds no {DUMP_NAME}: not a MarTech Hub backup")
        archive.extractall(work, members=members, filter="data")
        connections.close_all()
        _run(
            [
                "pg_restore",
                *args,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "-d",
                name,
                str(Path(work, DUMP_NAME)),
            ],
            env,
        )
        restored_media = Path(work, MEDIA_DIR)
        media = Path(settings.MEDIA_ROOT)
        if restored_media.exists():
            if media.exists():
                shutil.rmtree(media)
            shutil.copytree(restored_media, media)
    log.info("restored from %s", archive_path)
