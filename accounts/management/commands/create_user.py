from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.roles import ROLES
from accounts.services import UnknownRole, user_create


class Command(BaseCommand):
    help = "Create or update a user with one role and a team (the team is created when missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help=f"one of: {', '.join(ROLES)}")
        parser.add_argument("--team", required=True, help="team name; created when missing")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            help="interface language; a new person gets Chinese, an existing one keeps theirs",
        )
        parser.add_argument(
            "--pii", action="store_true", help="grant view_pii (unmasked customer contact data)"
        )

    def handle(self, *args, **options) -> None:
        try:
            user = user_create(
                username=options["username"],
                role=options["role"],
                team_name=options["team"],
                password=options["password"],
                email=options["email"],
                pii=options["pii"],
                language=options["language"],
            )
        except UnknownRole as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(f"{user.username}: role {options['role']}, team {user.team.name}")
        )
