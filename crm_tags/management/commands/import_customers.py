from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.csv_import import ImportRejected
from crm_tags import services


class Command(BaseCommand):
    help = "Import customers from a CSV file (COPY; all or nothing; existing external ids are updated)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            help="CSV: external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel[,attributes...]",
        )

    def handle(self, *args, **options) -> None:
        try:
            with open(options["file"], "rb") as handle:
                result = services.customers_import(upload=handle, by=None)
        except ImportRejected as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.rows} customers imported ({result.created} new, {result.updated} updated)."
            )
        )
