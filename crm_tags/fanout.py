"""Tag builds fanned out over customer-id ranges: a rule over many customers runs as a chord of Celery
tasks, one per range, across the workers of the `tags` queue.

A queued build of a rule over at least `TAG_FANOUT_MIN_CUSTOMERS` customers is split into
`TAG_FANOUT_PARTS` customer-id ranges (`TagBuildPart`). Each range task runs the rule's one statement
restricted to its range and stores the matching ids (`crm_tags_buildmatch`, unlogged: scratch that a
crash may lose, as a crashed build is failed anyway) in its own short transaction; the range that finishes last (counted in Postgres under the build's
row lock: the project runs Celery without a result backend, which Celery's own chord needs) applies
every range's matches to the membership in **one** transaction (`services._apply_membership`,
the single-statement build's own code), so readers never see half a tag. Until then the previous
membership stands.

Failure is visible and harmless: a range task that raises fails the build; a range task whose worker died (its part "running" while nobody holds its advisory lock) fails the build
at the next orphan sweep. Either way the matches are deleted and the membership is untouched; a range
task delivered again after its build failed does nothing. Smaller tags stay one statement
(`services.tag_build_run`).

The tags that read a fanned-out tag wait for its join: `finish` queues their builds (as of its `as_of`
when one was given), and each of those queues its own dependents in turn. A rebuild of every tag
(`services.tags_rebuild_all`) fans out the same way and leaves every tag downstream of a fanned-out one
to that chain, so none is built from the old membership; after a failed build they are not rebuilt.
A tag reading two fanned-out tags is queued by each join; of two builds of one tag, one that joins after
a newer one is done does not apply (the newer was queued later, after both joins' data).
"""

# SQL is assembled from fixed fragments and the compiled rule; every value is a bound parameter.
# ruff: noqa: S608

import logging
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.task_queue import enqueue
from crm_tags import services
from crm_tags.models import Tag, TagBuild, TagBuildPart
from crm_tags.rules.compiler import compile_rule, tune_session_for_rules
from privacy import personal_data

log = logging.getLogger(__name__)

# pg_advisory_xact_lock(PART_LOCK_NAMESPACE, part id): held while a range task runs its part
PART_LOCK_NAMESPACE = 7304


def fans_out(build: TagBuild) -> bool:
    """Whether this build runs as ranges: a rule over at least TAG_FANOUT_MIN_CUSTOMERS customers."""
    if build.version_id is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT customers FROM crm_tags_customercount WHERE id = 1")
        row = cursor.fetchone()
    return bool(row) and row[0] >= settings.TAG_FANOUT_MIN_CUSTOMERS


def ranges(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """`parts` half-open id ranges [lo, hi) covering low..high (inclusive), as even as integers allow."""
    span = high - low + 1
    bounds = [low + span * number // parts for number in range(parts + 1)]
    return [(bounds[n], bounds[n + 1]) for n in range(parts) if bounds[n] < bounds[n + 1]]


def start(build: TagBuild) -> None:
    """Split the queued build into ranges and queue one task per range (the last to finish applies)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM crm_tags_customer")
        low, high = cursor.fetchone()
    parts = ranges(low or 0, high or 0, max(1, settings.TAG_FANOUT_PARTS))
    with transaction.atomic():
        now = timezone.now()
        # every range reads the rule as of the same moment: the build's as_of, or else its start
        if not TagBuild.objects.filter(pk=build.pk, status=TagBuild.Status.QUEUED).update(
            status=TagBuild.Status.RUNNING, started_at=now
        ):
            return  # another worker took it
        created = TagBuildPart.objects.bulk_create(
            TagBuildPart(build=build, number=number, low=lo, high=hi) for number, (lo, hi) in enumerate(parts)
        )
        for part in created:
            enqueue("crm_tags.tasks.run_tag_build_part", part.pk)
    log.info("tag build %s fanned out over %s customer-id ranges", build.pk, len(parts))


def _live(build_id: int) -> bool:
    return TagBuild.objects.filter(pk=build_id, status=TagBuild.Status.RUNNING).exists()


def run_part(part_id: int) -> int:
    """Store the matches of one customer-id range; returns how many (nothing if its build is over). The
    range that completes the set applies the build; one that fails fails the build."""
    part = TagBuildPart.objects.select_related("build__version").get(pk=part_id)
    build = part.build
    if not _live(build.pk):
        return 0
    TagBuildPart.objects.filter(pk=part.pk).update(
        status=TagBuildPart.Status.RUNNING, started_at=timezone.now()
    )
    started = time.monotonic()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [PART_LOCK_NAMESPACE, part.pk])
            compiled = compile_rule(
                build.version.definition,
                as_of=build.as_of or build.started_at,
                rollout=(build.tag_id, build.rollout_percent),
            )
            tune_session_for_rules(cursor)
            # a part delivered again (its worker died after the insert) replaces what it stored
            cursor.execute(
                "DELETE FROM crm_tags_buildmatch WHERE build_id = %s AND customer_id >= %s AND customer_id < %s",
                [build.pk, part.low, part.high],
            )
            cursor.execute(
                "INSERT INTO crm_tags_buildmatch (build_id, customer_id) SELECT %s, r.customer_id "
                f"FROM ({compiled.sql}) r WHERE r.customer_id >= %s AND r.customer_id < %s",
                [build.pk, *compiled.params, part.low, part.high],
            )
            matched = cursor.rowcount
            TagBuildPart.objects.filter(pk=part.pk).update(
                status=TagBuildPart.Status.DONE, matched=matched, seconds=time.monotonic() - started
            )
    except Exception as exc:  # noqa: BLE001 - a failed range fails its build, visibly
        log.exception("range %s of tag build %s failed", part.number, build.pk)
        fail_build(build.pk, str(exc))
        return 0
    with transaction.atomic():
        # the parts' count read under the build's row lock: exactly one range sees the set complete
        TagBuild.objects.select_for_update().filter(pk=build.pk).first()
        complete = (
            not TagBuildPart.objects.filter(build_id=build.pk)
            .exclude(status=TagBuildPart.Status.DONE)
            .exists()
        )
    if complete:
        finish(build.pk)
    return matched


def finish(build_id: int) -> None:
    """Apply every range's matches to the membership in one transaction (or fail the build)."""
    build = TagBuild.objects.select_related("version").get(pk=build_id)
    started = build.started_at or timezone.now()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", [services.BUILD_LOCK_NAMESPACE, build.pk]
                )
            if not TagBuild.objects.filter(pk=build.pk, status=TagBuild.Status.RUNNING).exists():
                return
            waiting = (
                TagBuildPart.objects.filter(build=build).exclude(status=TagBuildPart.Status.DONE).count()
            )
            if waiting:
                raise services.TagError(f"{waiting} customer-id range(s) of the build did not finish")
            tag = Tag.objects.select_for_update().get(pk=build.tag_id)
            # two builds of a tag can run at once (a tag reading two fanned-out tags is queued by each
            # join) and finish in either order: the newer was queued later, so read data at least as new
            if TagBuild.objects.filter(
                tag_id=build.tag_id, pk__gt=build.pk, status=TagBuild.Status.DONE
            ).exists():
                raise services.TagError(_("A newer build of this tag finished first; its membership stands."))
            services._apply_membership(
                tag=tag,
                build=build,
                sql="SELECT customer_id FROM crm_tags_buildmatch WHERE build_id = %s",
                params=[build.pk],
                consent_filter=True,
            )
            _drop_matches(build.pk)
            services.build_mark_done(build, seconds=(timezone.now() - started).total_seconds())
    except Exception as exc:  # noqa: BLE001 - any failure of a build is recorded and shown
        log.exception("fanned-out tag build %s failed", build_id)
        fail_build(build_id, str(exc))
        return
    log.info(
        "tag %s built over ranges: %s members, +%s -%s",
        build.tag_id,
        build.members,
        build.entered,
        build.exited,
    )
    # the tags that read it are built now, from the new membership (tags_rebuild_all leaves them out of
    # its own loop); each of their builds queues its own dependents in turn
    services._queue_dependents(tag, as_of=build.as_of)


def _drop_matches(build_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_tags_buildmatch WHERE build_id = %s", [build_id])


def fail_build(build_id: int, reason: str) -> None:
    """Mark the build failed (the previous membership stands) and drop what its ranges stored."""
    with transaction.atomic():
        TagBuild.objects.filter(pk=build_id, status=TagBuild.Status.RUNNING).update(
            status=TagBuild.Status.FAILED,
            finished_at=timezone.now(),
            error=personal_data.scrub_text(reason)[:2000],
            entered=0,
            exited=0,
            excluded_by_consent=0,
        )
        TagBuildPart.objects.filter(build_id=build_id).exclude(status=TagBuildPart.Status.DONE).update(
            status=TagBuildPart.Status.FAILED
        )
        _drop_matches(build_id)


def fail_dead_parts() -> int:
    """Fail the fanned-out builds one of whose range tasks died mid-way (its part "running" while nobody
    holds the part's lock); returns how many. Run by the orphan sweep."""
    failed = 0
    # a part marks itself running just before it takes its lock: only parts running for a while count
    running = TagBuildPart.objects.filter(
        status=TagBuildPart.Status.RUNNING,
        build__status=TagBuild.Status.RUNNING,
        started_at__lt=timezone.now() - services.ORPHAN_GRACE,
    ).values_list("pk", "build_id")
    for part_id, build_id in running:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [PART_LOCK_NAMESPACE, part_id])
            free = cursor.fetchone()[0]
        if free and TagBuildPart.objects.filter(pk=part_id, status=TagBuildPart.Status.RUNNING).exists():
            fail_build(build_id, "a customer-id range's worker stopped before it finished")
            failed += 1
    return failed
