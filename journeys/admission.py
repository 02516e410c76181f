"""Admitting customers into journeys, set-based: one `INSERT … SELECT` per trigger source (a tag build's
entered or exited set, a range of newly committed events) with the entry rules in its WHERE clause:
re-entry, the entry condition (a compiled tag rule), the gray share and the holdout, both as tags do it
(`hash(seed, customer) mod 100 < P`). The unique (journey, customer, trigger source) key makes admitting
the same source twice add nobody.

The same pass over new events ends enrolments whose goal event arrived (converted) and wakes waits for an
event. New events are read up to a watermark below which every event id is committed (see
`events_watermark`), so an import that commits late is never skipped.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from crm_tags.models import Tag, TagBuild
from crm_tags.rules import compile_rule, gray_filter
from journeys.definition import TAG_TRIGGERS, program_of
from journeys.models import EngineCursor, Journey, JourneyVersion

log = logging.getLogger(__name__)
EVENTS_CURSOR = "events"
MAX_EVENT_RANGE = 200_000  # event ids one pass reads; the rest wait for the next
# a build still queued or running holds back the cursor (an earlier id may commit after a later one)
# unless it is older than this (then it is taken as lost)
STUCK_BUILD = timedelta(hours=1)
HOLDOUT_SEED_OFFSET = 1 << 40
ANALYZE_AFTER = 50_000  # an admission this large refreshes the enrolments' statistics


def gray_seed(journey_id: int) -> int:
    """Seeds apart from tags' (a tag's seed is its id): a journey's gray group is not its tag's."""
    return -journey_id


def holdout_seed(journey_id: int) -> int:
    return -journey_id - HOLDOUT_SEED_OFFSET


def _entry_sql(
    journey: Journey, version: JourneyVersion, now: datetime, *, first: bool = False
) -> tuple[str, list[Any]]:
    """The WHERE clause of the entry rules over `s.customer_id`; `first`: the journey has no enrolment yet
    (nobody can have been in it before, so the re-entry probe is left out)."""
    entry = version.entry or {}
    clauses: list[str] = ["true"]
    params: list[Any] = []
    reentry = entry.get("reentry", "never")
    # A scalar subquery, not NOT EXISTS: the planner turns NOT EXISTS into an anti-join that reads every
    # enrolment of the journey (2 s at a million), where this probes the (customer, journey) index per
    # entrant (docs/journeys.md, "Measured").
    previous = "SELECT 1 FROM journeys_enrolment p WHERE p.customer_id = s.customer_id AND p.journey_id = %s"
    if first:
        pass  # nobody has been in the journey: no re-entry rule can refuse anyone
    elif reentry == "never":
        clauses.append(f"({previous} LIMIT 1) IS NULL")
        params.append(journey.pk)
    elif reentry == "after_days":
        clauses.append(f"({previous} AND (p.state = 'active' OR p.entered_at > %s) LIMIT 1) IS NULL")
        params += [journey.pk, now - timedelta(days=int(entry["reentry_days"]))]
    elif reentry == "always":  # again at once, but never twice at the same time
        clauses.append(f"({previous} AND p.state = 'active' LIMIT 1) IS NULL")
        params.append(journey.pk)
    if journey.percent < 100:
        sql, gray_params = gray_filter(gray_seed(journey.pk), journey.percent)
        clauses.append(sql.replace("{cid}", "s.customer_id"))
        params += gray_params
    if entry.get("condition"):
        compiled = compile_rule(entry["condition"], as_of=now)
        clauses.append(f"s.customer_id IN (SELECT r.customer_id FROM ({compiled.sql}) r)")  # noqa: S608
        params += compiled.params
    return " AND ".join(clauses), params


def admit(
    *, journey: Journey, version: JourneyVersion, source_sql: str, source_params: list[Any], now: datetime
) -> int:
    """Admit the customers `source_sql` selects (`customer_id`, `ref`: one row per customer) that pass the
    entry rules; returns how many entered."""
    with connection.cursor() as cursor:
        # the callers hold the journey's row (or the events cursor's): nobody else admits into it meanwhile
        cursor.execute("SELECT EXISTS (SELECT 1 FROM journeys_enrolment WHERE journey_id = %s)", [journey.pk])
        empty = not cursor.fetchone()[0]
    where, params = _entry_sql(journey, version, now, first=empty)
    holdout_percent = int((version.entry or {}).get("holdout_percent", 0))
    if holdout_percent > 0:
        sql, holdout_params = gray_filter(holdout_seed(journey.pk), holdout_percent)
        holdout = f"({sql.replace('{cid}', 's.customer_id')})"
    else:
        holdout, holdout_params = "false", []
    goal = version.goal or {}
    # a holdout waits out the goal's window (its conversion is counted), then completes
    holdout_due = now + timedelta(days=int(goal["within_days"])) if goal else now
    first = program_of(version.steps).first or ""
    with connection.cursor() as cursor:
        # every fragment is built here from compiled rules and fixed SQL; values are parameters
        sql = (
            "INSERT INTO journeys_enrolment (journey_id, version_id, customer_id, trigger_ref, holdout, state, "  # noqa: S608
            "step, wait_event, exit_reason, next_at, entered_at) "
            "SELECT %s, %s, s.customer_id, s.ref, h.holdout, 'active', %s, '', '', "
            "CASE WHEN h.holdout THEN %s ELSE %s END, %s "
            f"FROM ({source_sql}) s CROSS JOIN LATERAL (SELECT {holdout} AS holdout) h "  # noqa: S608
            f"WHERE {where} "
            # into an empty journey nothing can conflict (one row per customer, the journey held): a plain
            # insert, without ON CONFLICT's speculative insertion per row
            + ("" if empty else "ON CONFLICT (journey_id, customer_id, trigger_ref) DO NOTHING")
        )
        cursor.execute(
            sql,
            [journey.pk, version.pk, first, holdout_due, now, now, *source_params, *holdout_params, *params],
        )
        entered = cursor.rowcount
        if entered >= ANALYZE_AFTER:
            # fresh statistics before the claims: with the table's old ones the planner took the claim for a
            # handful of rows and read every due entry of the index, then sorted, at each batch (0.4 s a
            # claim over a million new enrolments in bench/journeys.py) instead of walking the index in order
            cursor.execute("ANALYZE journeys_enrolment")
        return entered


# --- tag triggers -------------------------------------------------------------------------------------


def _tag_builds_after(journey: Journey, tag_id: int, now: datetime) -> list[TagBuild]:
    """The tag's builds after the journey's cursor, up to the first one still unfinished."""
    builds = []
    for build in TagBuild.objects.filter(tag_id=tag_id, pk__gt=journey.trigger_cursor).order_by("pk")[:100]:
        finished = build.status in (TagBuild.Status.DONE, TagBuild.Status.FAILED)
        if not finished and build.created_at > now - STUCK_BUILD:
            break
        builds.append(build)
    return builds


def active_journey_locked(journey_id: int) -> Journey | None:
    """The journey with its active version, its row locked, when it is active and no other pass holds it
    (inside the caller's transaction; None otherwise)."""
    return (
        Journey.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=journey_id, status=Journey.Status.ACTIVE)
        .select_related("active_version")
        .first()
    )


def admit_from_tag_builds(*, journey_id: int, now: datetime | None = None) -> int:
    """Admit from the tag builds a tag-triggered journey has not read yet (and, with exit_on_leave, end the
    enrolments of who left); one transaction, the journey's row locked (a concurrent pass skips it)."""
    now = now or timezone.now()
    with transaction.atomic():
        journey = active_journey_locked(journey_id)
        if journey is None:
            return 0
        version = journey.active_version
        trigger = version.trigger
        tag_id = Tag.objects.filter(slug=trigger["tag"]).values_list("pk", flat=True).first()
        if tag_id is None:
            return 0
        change = "entered" if trigger["kind"] == "tag_entered" else "exited"
        entered = 0
        builds = _tag_builds_after(journey, tag_id, now)
        for build in builds:
            if build.status != TagBuild.Status.DONE:
                continue
            history = (
                "SELECT h.customer_id, %s AS ref FROM crm_tags_tagmembershipchange h "
                "WHERE h.tag_id = %s AND h.created_at >= %s AND h.build_id = %s AND h.change = %s"
            )
            since = build.started_at or build.created_at
            entered += admit(
                journey=journey,
                version=version,
                source_sql=history,
                source_params=[f"b{build.pk}", tag_id, since, build.pk, change],
                now=now,
            )
            if trigger.get("exit_on_leave"):
                with connection.cursor() as cursor:
                    cursor.execute(
                        "UPDATE journeys_enrolment e SET state = 'exited', exit_reason = 'left_tag', "
                        "finished_at = %s, next_at = NULL FROM crm_tags_tagmembershipchange h "
                        "WHERE h.tag_id = %s AND h.created_at >= %s AND h.build_id = %s AND h.change = 'exited' "
                        "AND e.customer_id = h.customer_id AND e.journey_id = %s AND e.state = 'active'",
                        [now, tag_id, since, build.pk, journey.pk],
                    )
        if builds:
            Journey.objects.filter(pk=journey.pk).update(trigger_cursor=builds[-1].pk)
    if entered:
        log.info("journey %s admitted %s from tag builds", journey_id, entered)
    return entered


def admit_tag_triggers(*, tag_id: int | None = None, now: datetime | None = None) -> int:
    """Every active tag-triggered journey (of one tag, when given) reads its new builds."""
    journeys = Journey.objects.filter(
        status=Journey.Status.ACTIVE, active_version__trigger__kind__in=list(TAG_TRIGGERS)
    )
    if tag_id is not None:
        slug = Tag.objects.filter(pk=tag_id).values_list("slug", flat=True).first()
        journeys = journeys.filter(active_version__trigger__tag=slug)
    return sum(admit_from_tag_builds(journey_id=pk, now=now) for pk in journeys.values_list("pk", flat=True))


# --- events: triggers, goals, waits -------------------------------------------------------------------


def events_watermark() -> int | None:
    """The highest event id below which every id is committed (or never will be), or None when an import
    is writing events right now. A SHARE lock waits for no writer (a short lock_timeout) and is released at
    once: while it is held nobody is inserting, and later inserts draw higher ids."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('lock_timeout'), set_config('lock_timeout', '200ms', true)"
            )
            previous = cursor.fetchone()[0]
            cursor.execute("LOCK TABLE crm_tags_event IN SHARE MODE")
            cursor.execute(
                "SELECT coalesce(max(id), 0), set_config('lock_timeout', %s, true) FROM crm_tags_event",
                [previous],
            )
            return cursor.fetchone()[0]
    except OperationalError:
        return None


def _event_trigger_source(trigger: dict) -> tuple[str, list[Any]]:
    clauses = ["ev.id > %s", "ev.id <= %s", "ev.event_type = %s"]
    params: list[Any] = [trigger["event"]]
    condition = trigger.get("condition") or {}
    if "amount" in condition:
        op = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}[condition["amount"]["op"]]
        clauses.append(f"ev.amount {op} %s")
        params.append(condition["amount"]["value"])
    if "properties" in condition:
        clauses.append("ev.properties @> %s")
        params.append(Jsonb(condition["properties"]))
    sql = (
        "SELECT DISTINCT ON (ev.customer_id) ev.customer_id, 'e' || ev.id AS ref FROM crm_tags_event ev "  # noqa: S608
        f"WHERE {' AND '.join(clauses)} ORDER BY ev.customer_id, ev.id"
    )
    return sql, params


def _apply_goals(low: int, high: int, now: datetime) -> int:
    converted = 0
    goals = (
        JourneyVersion.objects.filter(journey__status=Journey.Status.ACTIVE, goal__isnull=False)
        .values_list("journey_id", "goal")
        .distinct()
    )
    with connection.cursor() as cursor:
        for journey_id, goal in goals:
            cursor.execute(
                "WITH hit AS (SELECT e.id, min(ev.occurred_at) AS at FROM crm_tags_event ev "
                "JOIN journeys_enrolment e ON e.customer_id = ev.customer_id AND e.journey_id = %s "
                "AND e.state = 'active' "
                "WHERE ev.id > %s AND ev.id <= %s AND ev.event_type = %s AND ev.occurred_at >= e.entered_at "
                "AND ev.occurred_at <= e.entered_at + %s GROUP BY e.id) "
                "UPDATE journeys_enrolment e SET state = 'converted', converted_at = hit.at, finished_at = %s, "
                "next_at = NULL, exit_reason = 'goal' FROM hit WHERE e.id = hit.id",
                [journey_id, low, high, goal["event"], timedelta(days=int(goal["within_days"])), now],
            )
            converted += cursor.rowcount
    return converted


def _wake_waits(low: int, high: int, now: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE journeys_enrolment e SET next_at = %s FROM (SELECT DISTINCT customer_id, event_type "
            "FROM crm_tags_event WHERE id > %s AND id <= %s) ev "
            "WHERE e.customer_id = ev.customer_id AND e.wait_event = ev.event_type AND e.state = 'active' "
            "AND e.next_at > %s",
            [now, low, high, now],
        )
        return cursor.rowcount


def process_new_events(*, now: datetime | None = None) -> dict[str, int]:
    """Read the events committed since the last pass: admit event-triggered journeys, convert enrolments
    whose goal arrived, wake waits for an event. One transaction with the cursor's move."""
    now = now or timezone.now()
    result = {"events": 0, "entered": 0, "converted": 0, "woken": 0}
    watermark = events_watermark()
    if watermark is None:
        return result
    with transaction.atomic():
        cursor_row = (
            EngineCursor.objects.select_for_update(skip_locked=True).filter(name=EVENTS_CURSOR).first()
        )
        if cursor_row is None:
            if EngineCursor.objects.filter(name=EVENTS_CURSOR).exists():
                return result  # another pass holds it
            # the first pass starts from now: history is not replayed into live journeys
            EngineCursor.objects.create(name=EVENTS_CURSOR, position=watermark)
            return result
        low = cursor_row.position
        high = min(watermark, low + MAX_EVENT_RANGE)
        if high <= low:
            return result
        journeys = Journey.objects.filter(
            status=Journey.Status.ACTIVE, active_version__trigger__kind="event"
        ).select_related("active_version")
        for journey in journeys:
            version = journey.active_version
            source, params = _event_trigger_source(version.trigger)
            result["entered"] += admit(
                journey=journey,
                version=version,
                source_sql=source,
                source_params=[max(low, journey.trigger_cursor), high, *params],
                now=now,
            )
        result["converted"] = _apply_goals(low, high, now)
        result["woken"] = _wake_waits(low, high, now)
        result["events"] = high - low
        cursor_row.position = high
        cursor_row.save(update_fields=["position", "updated_at"])
    return result
