from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.csv_import import ImportRejected
from crm_tags import services


class Command(BaseCommand):
    help = "Import events from a CSV file (COPY; all or nothing; per-customer totals updated in the same transaction)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", help="CSV: customer_external_id,event_type,occurred_at,amount,channel[,properties...]"
        )

    def handle(self, *args, **options) -> None:
        try:
            with open(options["file"], "rb") as handle:
                result = services.events_import(upload=handle, by=None)
        except ImportRejected as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"{result.rows} events imported for {result.customers} customers.")
        )
