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


def _restore_database(dump: Path, env: dict[str, str], args: list[str], name: str) -> None:
    """The dump replaces the database in one transaction: the public schema is dropped and made again,
    then the dump's SQL runs (`pg_restore --clean` cannot drop the keys that the events' month
    partitions inherit from their partitioned table). Any error rolls all of it back."""
    with tempfile.TemporaryFile() as script_errors, tempfile.TemporaryFile() as load_errors:
        script = subprocess.Popen(  # noqa: S603 - fixed program, the archive's own dump file
            ["pg_restore", "--no-owner", "-f", "-", str(dump)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=script_errors,
        )
        load = subprocess.Popen(  # noqa: S603 - fixed program and the configured database
            ["psql", *args, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", name],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=load_errors,
        )
        assert script.stdout is not None and load.stdin is not None
        try:
            load.stdin.write(b"BEGIN;\nDROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n")
            shutil.copyfileobj(script.stdout, load.stdin, 1 << 20)
            # committed only when the whole dump was read: a damaged one leaves the transaction open,
            # and psql's exit rolls it back
            if script.wait(timeout=3600) == 0:
                load.stdin.write(b"COMMIT;\n")
        except BrokenPipeError:
            pass  # psql stopped at an error: reported below
        finally:
            load.stdin.close()
        script.wait(timeout=3600)
        load.wait(timeout=3600)
        for process, errors, program in ((script, script_errors, "pg_restore"), (load, load_errors, "psql")):
            if process.returncode != 0:
                errors.seek(0)
                raise BackupError(
                    f"{program} failed: {errors.read().decode(errors='replace').strip()[:2000]}"
                )


def backup_restore(*, archive_path: Path) -> None:
    """Replace the database and media files with the archive's, the database in one transaction."""
    env, args = _pg_env_and_args()
    name = settings.DATABASES["default"]["NAME"]
    with tempfile.TemporaryDirectory() as work, tarfile.open(archive_path, "r") as archive:
        members = _safe_members(archive)
        if DUMP_NAME not in {m.name for m in members}:
            raise BackupError(f"{archive_path} holds no {DUMP_NAME}: not a MarTech Hub backup")
        archive.extractall(work, members=members, filter="data")
        connections.close_all()
        _restore_database(Path(work, DUMP_NAME), env, args, name)
        restored_media = Path(work, MEDIA_DIR)
        media = Path(settings.MEDIA_ROOT)
        if restored_media.exists():
            if media.exists():
                shutil.rmtree(media)
            shutil.copytree(restored_media, media)
    log.info("restored from %s", archive_path)
