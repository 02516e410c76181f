from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.backup import BackupError, backup_create


class Command(BaseCommand):
    help = "Back up the database (pg_dump) and uploaded files into one .tar archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output", type=Path, help="archive path (default: .data/backups/martech-<time>.tar)"
        )

    def handle(self, *args, **options) -> None:
        output = options["output"] or Path(".data/backups") / f"martech-{timezone.now():%Y%m%d-%H%M%S}.tar"
        try:
            path = backup_create(output=output)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Backup written to {path}"))
