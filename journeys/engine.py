"""The step engine: claims due enrolments in batches (`FOR UPDATE SKIP LOCKED`, so ticks and workers never
take the same one) and walks them through their steps in rounds: each round groups the batch by (version,
step) and runs each group's step set-based. Everything a batch does (step runs, deliveries, tag changes,
tickets, notifications, the enrolments' new places) commits in one transaction; StepRun's unique
(enrolment, step) means a batch retried after a killed worker cannot run a step twice.
"""

import hashlib
import logging
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from crm_tags.rules import compile_rule
from journeys import actions
from journeys.definition import Node, Program, program_of, wait_until
from journeys.models import Enrolment, Journey, JourneyVersion, StepRun

log = logging.getLogger(__name__)
BATCH_SIZE = 500
MAX_ROUNDS = 50  # steps one enrolment may take in one batch (a loop-free tree is shorter than this)
_UNSET: Any = object()
_programs: dict[int, Program] = {}  # versions are immutable once active: their programs can be kept


def program_for(version: Any) -> Program:
    program = _programs.get(version.pk)
    if program is None:
        program = _programs[version.pk] = program_of(version.steps)
    return program


class Runner:
    """One claimed batch: the enrolments, what they did, and where each goes next."""

    # events a wait for an event sees are those up to this moment (None: all; a dry run replays the past)
    events_until: datetime | None = None

    def __init__(self, enrolments: list[Enrolment], now: datetime) -> None:
        self.now = now
        self.enrolments = enrolments
        self.journeys: dict[int, Journey] = {e.journey_id: e.journey for e in enrolments}
        self.runs: list[StepRun] = []
        self.moving: list[Enrolment] = []  # still walking this batch, for the next round
        self.deliveries_made = False

    # what a step does to one enrolment
    def advance(
        self, enrolment: Enrolment, node: Node, outcome: str, detail: dict | None = None, to: Any = _UNSET
    ) -> None:
        """Record the step (once) and move to `to` (default: the step after it); the end completes."""
        self.runs.append(
            StepRun(
                enrolment=enrolment,
                journey_id=enrolment.journey_id,
                step=node.id,
                kind=node.action or node.kind,
                outcome=outcome,
                detail=detail or {},
                at=self.now,
            )
        )
        target = node.next if to is _UNSET else to
        enrolment.step_started_at = None
        enrolment.wait_deadline = None
        enrolment.wait_event = ""
        if target is None:
            self.finish(enrolment, Enrolment.State.COMPLETED)
        else:
            enrolment.step = target
            enrolment.next_at = self.now
            self.moving.append(enrolment)

    def hold(self, enrolment: Enrolment, until: datetime) -> None:
        """Stay at this step until `until`."""
        enrolment.next_at = until

    def finish(self, enrolment: Enrolment, state: str, reason: str = "") -> None:
        enrolment.state = state
        enrolment.step = ""
        enrolment.next_at = None
        enrolment.finished_at = self.now
        enrolment.exit_reason = reason

    def step_handler(self, node: Node) -> Any:
        """What runs a step of this kind (a dry run replaces the actions)."""
        return STEP_KINDS[node.kind]

    # the rounds
    def run(self) -> None:
        self.moving = []
        walking = []
        for enrolment in self.enrolments:
            if enrolment.holdout:
                # a holdout enters and is measured but never acts: its time (the goal's window) is up
                self.finish(enrolment, Enrolment.State.COMPLETED, "holdout")
            else:
                walking.append(enrolment)
        for _round in range(MAX_ROUNDS):
            if not walking:
                break
            groups: dict[tuple[int, str], list[Enrolment]] = defaultdict(list)
            for enrolment in walking:
                groups[(enrolment.version_id, enrolment.step)].append(enrolment)
            self.moving = []
            for (_version, step), group in groups.items():
                program = program_for(group[0].version)
                node = program.nodes.get(step) if step else None
                if node is None:  # no steps (or none left)
                    for enrolment in group:
                        self.finish(enrolment, Enrolment.State.COMPLETED)
                    continue
                self.step_handler(node)(self, node, group)
            walking = self.moving
        for enrolment in walking:  # still moving after MAX_ROUNDS: go on at the next tick
            enrolment.next_at = self.now

    def save(self) -> None:
        """Write every enrolment's new place in one statement (an UPDATE from arrays: Django's bulk_update
        writes a CASE per column whose cost grows with the square of the batch), then the step runs."""
        rows = self.enrolments
        if rows:
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE journeys_enrolment e SET state = u.state, step = u.step, "
                    "step_started_at = u.step_started_at, wait_deadline = u.wait_deadline, "
                    "wait_event = u.wait_event, next_at = u.next_at, finished_at = u.finished_at, "
                    "exit_reason = u.exit_reason "
                    "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], "
                    "%s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[]) "
                    "AS u(id, state, step, step_started_at, wait_deadline, wait_event, next_at, finished_at, "
                    "exit_reason) WHERE e.id = u.id",
                    [
                        [e.pk for e in rows],
                        [e.state for e in rows],
                        [e.step for e in rows],
                        [e.step_started_at for e in rows],
                        [e.wait_deadline for e in rows],
                        [e.wait_event for e in rows],
                        [e.next_at for e in rows],
                        [e.finished_at for e in rows],
                        [e.exit_reason for e in rows],
                    ],
                )
        # no ignore_conflicts: a second run of a step is a bug to surface, not to hide
        StepRun.objects.bulk_create(self.runs, batch_size=1000)


# --- the step kinds ------------------------------------------------------------------------------------


def run_wait(runner: Runner, node: Node, group: list[Enrolment]) -> None:
    wait = node.spec["wait"]
    event = wait.get("until_event")
    arriving = [e for e in group if e.step_started_at is None]
    for enrolment in arriving:
        enrolment.step_started_at = runner.now
        enrolment.wait_deadline = wait_until(node.spec, runner.now)
        enrolment.wait_event = event or ""
    seen: set[int] = set()
    if event:
        resuming = [e for e in group if e not in arriving]
        seen = _seen_events(resuming, event, until=runner.events_until)
    for enrolment in group:
        if event and enrolment.pk in seen:
            runner.advance(enrolment, node, StepRun.Outcome.PASSED, {"path": "then"}, to=node.lists["then"])
        elif enrolment.wait_deadline <= runner.now:
            if event:
                runner.advance(
                    enrolment, node, StepRun.Outcome.PASSED, {"path": "timeout"}, to=node.lists["timeout"]
                )
            else:
                runner.advance(enrolment, node, StepRun.Outcome.PASSED)
        else:
            runner.hold(enrolment, enrolment.wait_deadline)


def _seen_events(group: list[Enrolment], event: str, until: datetime | None = None) -> set[int]:
    """The enrolments whose customer had an `event` since the wait started (and up to `until`, if given)."""
    if not group:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w.id FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS w(id, customer_id, since) "
            "WHERE EXISTS (SELECT 1 FROM crm_tags_event ev WHERE ev.customer_id = w.customer_id "
            "AND ev.occurred_at >= w.since AND ev.event_type = %s "
            "AND (%s::timestamptz IS NULL OR ev.occurred_at <= %s::timestamptz))",
            [
                [e.pk for e in group],
                [e.customer_id for e in group],
                [e.step_started_at for e in group],
                event,
                until,
                until,
            ],
        )
        return {row[0] for row in cursor.fetchall()}


def run_branch(runner: Runner, node: Node, group: list[Enrolment]) -> None:
    """The rule on each customer as they are now: one statement for the whole group."""
    compiled = compile_rule(
        node.spec["branch"]["if"], as_of=runner.now, only_ids=[e.customer_id for e in group]
    )
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, compiled.params)
        matched = {row[0] for row in cursor.fetchall()}
    for enrolment in group:
        path = "then" if enrolment.customer_id in matched else "else"
        runner.advance(enrolment, node, StepRun.Outcome.PASSED, {"path": path}, to=node.lists[path])


def split_bucket(enrolment_id: int, step: str) -> int:
    """0-99, fixed per enrolment and step (a retried batch takes the same arm)."""
    digest = hashlib.sha256(f"{enrolment_id}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def run_split(runner: Runner, node: Node, group: list[Enrolment]) -> None:
    arms = node.spec["split"]
    for enrolment in group:
        bucket = split_bucket(enrolment.pk, node.id)
        upto = 0
        chosen = len(arms) - 1
        for index, arm in enumerate(arms):
            upto += arm["percent"]
            if bucket < upto:
                chosen = index
                break
        runner.advance(enrolment, node, StepRun.Outcome.PASSED, {"arm": chosen}, to=node.lists[str(chosen)])


def run_exit(runner: Runner, node: Node, group: list[Enrolment]) -> None:
    for enrolment in group:
        runner.advance(enrolment, node, StepRun.Outcome.PASSED, to=None)
        runner.finish(enrolment, Enrolment.State.EXITED, "exit_step")


STEP_KINDS = {
    "wait": run_wait,
    "branch": run_branch,
    "split": run_split,
    "exit": run_exit,
    "action": actions.run_action,
}


# --- claiming -----------------------------------------------------------------------------------------


def _claim(now: datetime, limit: int) -> list[Enrolment]:
    with connection.cursor() as cursor:
        # the partial index on next_at (state = 'active') finds the due ones; nothing due is one probe
        cursor.execute(
            "SELECT e.id FROM journeys_enrolment e WHERE e.state = 'active' AND e.next_at <= %s "
            "AND EXISTS (SELECT 1 FROM journeys_journey j WHERE j.id = e.journey_id AND j.status = 'active') "
            "ORDER BY e.next_at LIMIT %s FOR UPDATE OF e SKIP LOCKED",
            [now, limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    enrolments = list(
        Enrolment.objects.filter(pk__in=ids).select_related("customer").order_by("next_at", "pk")
    )
    # a batch holds a handful of journeys and versions: read each once, not once per row (a version's
    # steps JSON decoded 500 times was a third of the claim's time in bench/journeys.py)
    versions = JourneyVersion.objects.in_bulk({e.version_id for e in enrolments})
    journeys = Journey.objects.select_related("owner", "campaign").in_bulk({e.journey_id for e in enrolments})
    for enrolment in enrolments:
        enrolment.version = versions[enrolment.version_id]
        enrolment.journey = journeys[enrolment.journey_id]
    return enrolments


def run_due(*, now: datetime | None = None, batch_size: int = BATCH_SIZE, max_batches: int = 20) -> int:
    """Claim and run due enrolments, batch after batch (each its own transaction); returns how many ran."""
    done = 0
    for _batch in range(max_batches):
        started = time.monotonic()
        with transaction.atomic():
            enrolments = _claim(now or timezone.now(), batch_size)
            if not enrolments:
                break
            runner = Runner(enrolments, now or timezone.now())
            runner.run()
            runner.save()
            if runner.deliveries_made:
                from config.task_queue import enqueue

                enqueue("journeys.tasks.send_deliveries")
        done += len(enrolments)
        log.info("journeys: ran %s enrolment(s) in %.3fs", len(enrolments), time.monotonic() - started)
        if len(enrolments) < batch_size:
            break
    return done
