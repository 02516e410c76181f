import importlib

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction


class Command(BaseCommand):
    help = (
        "Create demo teams, one user per role and each app's demo data. Idempotent: "
        "running it again changes nothing that is already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--small", action="store_true", help="a smaller data set (for tests and quick starts)"
        )

    def handle(self, *args, **options) -> None:
        # accounts first, then every other app that has a `demo` module with `seed(stdout, small)`.
        ordered = ["accounts", "tickets", "crm_tags", "campaigns", "knowledge_base", "analytics"]
        configs = sorted(
            apps.get_app_configs(),
            key=lambda c: ordered.index(c.label) if c.label in ordered else len(ordered),
        )
        for config in configs:
            try:
                module = importlib.import_module(f"{config.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
                continue
            with transaction.atomic():
                module.seed(stdout=self.stdout, small=options["small"])
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
