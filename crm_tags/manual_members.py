"""Adding customers to or removing them from a manual tag without replacing its whole list (a journey's
tag_add / tag_remove step): one build per call, set-based, with entered/exited history like any build, so
whatever follows the tag (journeys, dependent rules) sees the change."""

import time
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from config import binary_sql
from crm_tags.models import Tag, TagBuild


class ManualTagError(ValueError):
    """The tag is not a manual tag."""


@transaction.atomic
def tag_members_change(
    *,
    tag: Tag,
    add: list[int] = (),
    remove: list[int] = (),
    by: User | None = None,
    now: datetime | None = None,
) -> TagBuild:
    """Add the customers `add` and remove the customers `remove` (ids) from a manual tag; those already in
    (or already out) are left alone. Returns the build, which counts who actually entered and exited."""
    if tag.kind != Tag.Kind.MANUAL:
        raise ManualTagError(_("Only manual tags take members added or removed by hand."))
    tag = Tag.objects.select_for_update().get(pk=tag.pk)  # builds of a tag take turns on its row
    now = now or timezone.now()
    started = time.monotonic()
    build = TagBuild.objects.create(
        tag=tag,
        rollout_percent=100,
        trigger=TagBuild.Trigger.MANUAL,
        status=TagBuild.Status.RUNNING,
        started_at=now,
        created_by=by if by is not None and by.pk else None,
    )
    # the ids go as binary arrays (a million ids quoted into the SQL text took seconds to send and parse)
    # and are joined as rows: `= ANY(array)` over a large array is a linear search per row
    with binary_sql.cursor() as cursor:
        if remove:
            cursor.execute(
                "WITH gone AS (DELETE FROM crm_tags_tagmembership m USING unnest(%b::bigint[]) AS r(id) "
                "WHERE m.tag_id = %b AND m.customer_id = r.id RETURNING m.customer_id) "
                "INSERT INTO crm_tags_tagmembershipchange (tag_id, customer_id, change, version, build_id, "
                "created_at) SELECT %b, customer_id, 'exited', NULL, %b, %b FROM gone",
                [sorted(set(remove)), tag.pk, tag.pk, build.pk, now],
            )
            build.exited = cursor.rowcount
        adding = sorted(set(add) - set(remove))
        if adding:
            cursor.execute(
                "WITH added AS (INSERT INTO crm_tags_tagmembership (tag_id, customer_id, since) "
                "SELECT %b, c.id, %b::timestamptz FROM unnest(%b::bigint[]) AS a(id) "
                "JOIN crm_tags_customer c ON c.id = a.id "
                "ON CONFLICT (tag_id, customer_id) DO NOTHING RETURNING customer_id) "
                "INSERT INTO crm_tags_tagmembershipchange (tag_id, customer_id, change, version, build_id, "
                "created_at) SELECT %b, customer_id, 'entered', NULL, %b, %b FROM added",
                [tag.pk, now, adding, tag.pk, build.pk, now],
            )
            build.entered = cursor.rowcount
        cursor.execute("SELECT count(*) FROM crm_tags_tagmembership WHERE tag_id = %b", [tag.pk])
        build.members = cursor.fetchone()[0]
    Tag.objects.filter(pk=tag.pk).update(members_count=build.members, last_built_at=now)
    build.status = TagBuild.Status.DONE
    build.finished_at = timezone.now()
    build.seconds = time.monotonic() - started
    build.save()
    return build
