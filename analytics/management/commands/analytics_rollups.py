"""Rebuild (backfill) or compact the dashboards' rollups: `manage.py analytics_rollups --rebuild`."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from analytics import rollups


class Command(BaseCommand):
    help = "Recompute the analytics rollups from the raw tables (--rebuild), or fold their delta rows (--compact)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rebuild", action="store_true", help="reinstall the triggers and recount everything"
        )
        parser.add_argument("--compact", action="store_true", help="fold the delta rows per key")

    def handle(self, *args: Any, rebuild: bool = False, compact: bool = False, **options: Any) -> None:
        if rebuild:
            rollups.rebuild()
            self.stdout.write(f"Rollups rebuilt (days in {rollups.ROLLUP_TZ}).")
        if compact or not rebuild:
            self.stdout.write(f"Rollups compacted: {rollups.compact()} delta rows folded.")
