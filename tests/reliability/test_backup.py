"""Backup → damage → restore gives back the rows and the uploaded files."""

import tarfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User


@pytest.mark.django_db(transaction=True)
def test_backup_restore_round_trip(make_user, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    upload = Path(settings.MEDIA_ROOT, "attachments", "a.txt")
    upload.parent.mkdir(parents=True)
    upload.write_text("keep me", encoding="utf-8")
    make_user("keeper")
    archive = tmp_path / "backup.tar"

    call_command("backup", "--output", str(archive))
    User.objects.filter(username="keeper").delete()
    upload.unlink()
    make_user("after_backup")

    call_command("restore", str(archive), "--yes")
    assert User.objects.filter(username="keeper").exists()
    assert not User.objects.filter(username="after_backup").exists()
    assert upload.read_text(encoding="utf-8") == "keep me"


@pytest.mark.django_db
def test_restore_refuses_an_archive_with_path_tricks(tmp_path):
    evil = tmp_path / "evil.tar"
    payload = tmp_path / "x.txt"
    payload.write_text("x")
    with tarfile.open(evil, "w") as archive:
        archive.add(payload, arcname="../../etc/evil.txt")
    with pytest.raises(CommandError, match="unsafe path"):
        call_command("restore", str(evil), "--yes")


@pytest.mark.django_db
def test_restore_refuses_a_foreign_archive(tmp_path):
    other = tmp_path / "other.tar"
    payload = tmp_path / "x.txt"
    payload.write_text("x")
    with tarfile.open(other, "w") as archive:
        archive.add(payload, arcname="x.txt")
    with pytest.raises(CommandError, match="not a MarTech Hub backup"):
        call_command("restore", str(other), "--yes")


@pytest.mark.django_db(transaction=True)
def test_a_damaged_archive_restores_nothing_and_leaves_the_database_as_it_was(make_user, settings, tmp_path):
    # given a backup whose database dump is cut in half
    settings.MEDIA_ROOT = str(tmp_path / "media")
    make_user("keeper")
    archive = tmp_path / "backup.tar"
    call_command("backup", "--output", str(archive))
    work = tmp_path / "work"
    with tarfile.open(archive) as whole:
        whole.extractall(work, filter="data")
    dump = work / "database.dump"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(damaged, "w") as out:
        for path in sorted(work.rglob("*")):
            out.add(path, arcname=str(path.relative_to(work)), recursive=False)
    make_user("after_backup")
    # when it is restored, then the restore fails and every row is still there
    with pytest.raises(CommandError, match="pg_restore failed"):
        call_command("restore", str(damaged), "--yes")
    assert set(User.objects.values_list("username", flat=True)) >= {"keeper", "after_backup"}
