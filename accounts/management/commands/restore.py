from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = "Restore the database and uploaded files from a backup archive (replaces what is there)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path)
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, **options) -> None:
        archive = options["archive"]
        if not archive.exists():
            raise CommandError(f"{archive} does not exist")
        if not options["yes"]:
            answer = input(f"Replace the database and media files with {archive}? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("Restore cancelled.")
        try:
            backup_restore(archive_path=archive)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Restored from {archive}"))
