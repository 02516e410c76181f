import re

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.audit_chain import audit_chain_verify

ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


def _anchor(value: str) -> tuple[int, str]:
    match = ANCHOR.match(value.strip().lower())
    if match is None:
        raise CommandError(f"an anchor is SEQ:HASH (as this command prints at the end), not {value!r}")
    return int(match[1]), match[2]


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain from its first entry to its last; report the first broken link "
        "(exit code 1). Redacted entries (a lawful erasure) are listed, not counted as broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="an entry's number and hash recorded earlier outside the database (repeatable): "
            "a chain recomputed after tampering no longer matches it",
        )

    def handle(self, *args, **options) -> None:
        anchors = dict(_anchor(value) for value in options["anchor"])
        report = audit_chain_verify(anchors=anchors)
        for reference, seqs in sorted(report.redacted.items()):
            self.stdout.write(
                f"redacted by {reference}: {len(seqs)} entries (#{', #'.join(str(s) for s in seqs[:20])}"
                f"{', …' if len(seqs) > 20 else ''})"
            )
        if report.broken is not None:
            raise CommandError(
                f"audit trail broken at {report.broken} ({report.checked} entries before it are intact)",
                returncode=1,
            )
        redacted = sum(len(seqs) for seqs in report.redacted.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"audit trail intact: {report.checked} entries, {redacted} of them redacted; "
                f"head {report.head_seq}:{report.head_hash}"
            )
        )
