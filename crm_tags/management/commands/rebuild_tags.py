from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm_tags import services, tasks
from crm_tags.models import Tag, TagBuild
from crm_tags.rules import parse_datetime_value


class Command(BaseCommand):
    help = (
        "Rebuild published rule tags (all, in dependency order, or one) now (--sync) or on Celery; with "
        "--sync, a tag over many customers still runs as range tasks on the tags queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tag", help="only this tag (slug)")
        parser.add_argument("--as-of", dest="as_of", help="evaluate the rules as of this ISO 8601 time")
        parser.add_argument("--sync", action="store_true", help="run here instead of queueing on Celery")

    def handle(self, *args, **options) -> None:
        try:
            as_of = parse_datetime_value(options["as_of"]) if options["as_of"] else None
        except ValueError as exc:
            raise CommandError(f"--as-of: {exc}") from exc
        tags = None
        if options["tag"]:
            tag = Tag.objects.filter(slug=options["tag"]).select_related("current_version").first()
            if tag is None or tag.current_version_id is None:
                raise CommandError(f"No published rule tag {options['tag']!r}.")
            tags = [tag]
        if not options["sync"]:
            if tags:
                build = services.tag_build_queue(tag=tags[0], trigger=TagBuild.Trigger.MANUAL, as_of=as_of)
                self.stdout.write(f"Queued build {build.pk if build else '-'}.")
            else:
                tasks.rebuild_all_tags.delay(
                    trigger=TagBuild.Trigger.MANUAL, as_of=as_of.isoformat() if as_of else None
                )
                self.stdout.write("Queued a rebuild of every published rule tag.")
            return
        for build in services.tags_rebuild_all(trigger=TagBuild.Trigger.MANUAL, tags=tags, as_of=as_of):
            if build.status == TagBuild.Status.RUNNING:
                self.stdout.write(
                    f"{build.tag.slug}: running over customer-id ranges on the tags queue (build {build.pk}); "
                    "the tags that read it are rebuilt after it."
                )
                continue
            line = (
                f"{build.tag.slug}: {build.status} in {build.seconds or 0:.2f}s, {build.members} members, "
                f"+{build.entered} -{build.exited}"
            )
            self.stdout.write(
                self.style.SUCCESS(line)
                if build.status == "done"
                else self.style.ERROR(line + f" {build.error}")
            )
