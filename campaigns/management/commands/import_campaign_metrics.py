"""python manage.py import_campaign_metrics CODE FILE: daily metrics from CSV, all or nothing."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.models import Campaign
from campaigns.services import ImportNeedsConfirmation, metrics_import
from config.csv_import import ImportRejected


class Command(BaseCommand):
    help = "Import a campaign's daily metrics (date, channel, spend, impressions, clicks, leads, conversions, revenue)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code", help="The campaign's code.")
        parser.add_argument("file", help="Path to a UTF-8 CSV file.")
        parser.add_argument(
            "--confirm",
            action="store_true",
            help="import rows that look wrong (more clicks than impressions, days after today) as they are",
        )

    def handle(self, *args: Any, code: str, file: str, confirm: bool = False, **options: Any) -> None:
        campaign = Campaign.objects.filter(code=code).first()
        if campaign is None:
            raise CommandError(f"No campaign with code {code!r}.")
        try:
            with open(file, "rb") as handle:
                count = metrics_import(campaign=campaign, upload=handle, by=None, confirm=confirm)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        except ImportRejected as exc:
            raise CommandError(str(exc)) from exc
        except ImportNeedsConfirmation as exc:
            lines = [
                f"{exc.total} row(s) look wrong; nothing was imported. Run again with --confirm to import them."
            ]
            lines += [f"  row {w.row}, column {w.column}: {w.message}" for w in exc.warnings]
            raise CommandError("\n".join(lines)) from exc
        self.stdout.write(self.style.SUCCESS(f"{count} row(s) imported into {campaign.code}."))
