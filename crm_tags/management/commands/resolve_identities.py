from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm_tags.identity.batch import BATCH_GROUPS, resolve_identities


class Command(BaseCommand):
    help = (
        "Find the profiles of one person in the whole base (connected components of the identifier graph) "
        "and merge each group into its oldest profile; --dry-run only counts and shows a sample."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count and show a sample; change nothing")
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_GROUPS, help="groups merged per transaction"
        )

    def handle(self, *args, **options) -> None:
        if options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1, not {options['batch_size']}")

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"merged {done} of {total} groups")

        report = resolve_identities(
            dry_run=options["dry_run"], batch_size=options["batch_size"], progress=progress
        )
        self.stdout.write(
            f"{report.customers} customers, {report.identifiers} identifier values: {report.groups} groups of one "
            f"person, {report.profiles_to_merge} profiles would merge into others."
        )
        for group in report.sample:
            self.stdout.write("  sample: " + " + ".join(group))
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Merged {report.merged} profiles ({report.refused} refused by the limits), stored "
                f"{report.identifiers_added} identifiers in {report.seconds:.1f}s."
            )
        )
