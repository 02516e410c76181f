"""The step engine: claims due enrolments in batches (`FOR UPDATE SKIP LOCKED`, so ticks and workers never
take the same one) and walks them through their steps in rounds: each round groups the batch by (version,
step) and runs each group's step set-based. Everything a batch does (step runs, deliveries, tag changes,
tickets, notifications, the enrolments' new places) commits in one transaction; StepRun's unique
(enrolment, step) means a batch retried after a killed worker cannot run a step twice.
"""

import hashlib
import json
import logging
import time
from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from config import binary_sql as bulk
from crm_tags.rules import compile_rule
from journeys import actions
from journeys.definition import Node, Program, program_of, wait_until
from journeys.models import Enrolment, Journey, JourneyVersion, StepRun

log = logging.getLogger(__name__)
BATCH_SIZE = 2000
MAX_ROUNDS = 50  # steps one enrolment may take in one batch (a loop-free tree is shorter than this)
_UNSET: Any = object()
# version id -> (its steps, their program). An id alone is not enough: a restored database, a sequence
# reset (the test suite's `flush` restarts every sequence) or a dry run over a draft gives one id other
# steps, and a program kept for the old ones would run the wrong tree (issue 20: a webhook step run as a wait).
_programs: dict[int, tuple[Any, Program]] = {}


def program_for(version: Any) -> Program:
    """The version's program, decoded once per process while its steps stay the same."""
    kept = _programs.get(version.pk)
    if kept is not None and kept[0] == version.steps:
        return kept[1]
    program = program_of(version.steps)
    if version.pk is not None:
        _programs[version.pk] = (version.steps, program)
    return program


class Run(NamedTuple):
    """One step run of a batch, written with the batch (StepRun's columns; a tuple, not a model instance:
    a batch makes thousands and writes them in one statement)."""

    enrolment_id: int
    journey_id: int
    step: str
    kind: str
    outcome: str
    detail: dict


class Runner:
    """One claimed batch: the enrolments, what they did, and where each goes next."""

    # events a wait for an event sees are those up to this moment (None: all; a dry run replays the past)
    events_until: datetime | None = None

    def __init__(self, enrolments: list[Enrolment], now: datetime) -> None:
        self.now = now
        self.enrolments = enrolments
        self.journeys: dict[int, Journey] = {e.journey_id: e.journey for e in enrolments}
        self.runs: list[Run] = []
        self.moving: list[Enrolment] = []  # still walking this batch, for the next round
        self.deliveries_made = False

    # what a step does to one enrolment
    def advance(
        self, enrolment: Enrolment, node: Node, outcome: str, detail: dict | None = None, to: Any = _UNSET
    ) -> None:
        """Record the step (once) and move to `to` (default: the step after it); the end completes."""
        self.runs.append(
            Run(enrolment.pk, enrolment.journey_id, node.id, node.action or node.kind, outcome, detail or {})
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
            states, state_values = bulk.codes(e.state for e in rows)
            steps, step_values = bulk.codes(e.step for e in rows)
            events, event_values = bulk.codes(e.wait_event for e in rows)
            reasons, reason_values = bulk.codes(e.exit_reason for e in rows)
            with bulk.cursor() as cursor:
                cursor.execute(
                    "UPDATE journeys_enrolment e SET state = (%b::text[])[u.state], step = (%b::text[])[u.step], "
                    "step_started_at = u.step_started_at, wait_deadline = u.wait_deadline, "
                    "wait_event = (%b::text[])[u.wait_event], next_at = u.next_at, finished_at = u.finished_at, "
                    "exit_reason = (%b::text[])[u.exit_reason] "
                    "FROM unnest(%b::bigint[], %b::int[], %b::int[], %b::timestamptz[], %b::timestamptz[], "
                    "%b::int[], %b::timestamptz[], %b::timestamptz[], %b::int[]) "
                    "AS u(id, state, step, step_started_at, wait_deadline, wait_event, next_at, finished_at, "
                    "exit_reason) WHERE e.id = u.id",
                    [
                        state_values,
                        step_values,
                        event_values,
                        reason_values,
                        [e.pk for e in rows],
                        states,
                        steps,
                        [e.step_started_at for e in rows],
                        [e.wait_deadline for e in rows],
                        events,
                        [e.next_at for e in rows],
                        [e.finished_at for e in rows],
                        reasons,
                    ],
                )
        self.save_runs()

    def save_runs(self) -> None:
        """The batch's step runs in one INSERT from arrays (a detail's JSON encoded once per distinct
        detail object). No ON CONFLICT: a second run of a step is a bug to surface, not to hide; the unique
        (enrolment, step) key makes the whole batch fail rather than act twice."""
        runs = self.runs
        if not runs:
            return
        encoded: dict[int, str] = {}
        for run in runs:
            if id(run.detail) not in encoded:
                encoded[id(run.detail)] = json.dumps(run.detail, separators=(",", ":"))
        steps, step_values = bulk.codes(r.step for r in runs)
        kinds, kind_values = bulk.codes(r.kind for r in runs)
        outcomes, outcome_values = bulk.codes(r.outcome for r in runs)
        details, detail_values = bulk.codes(encoded[id(r.detail)] for r in runs)
        with bulk.cursor() as cursor:
            cursor.execute(
                "INSERT INTO journeys_steprun (enrolment_id, journey_id, step, kind, outcome, detail, at) "
                "SELECT u.enrolment_id, u.journey_id, (%b::text[])[u.step], (%b::text[])[u.kind], "
                "(%b::text[])[u.outcome], ((%b::text[])[u.detail])::jsonb, %b::timestamptz "
                "FROM unnest(%b::bigint[], %b::bigint[], %b::int[], %b::int[], %b::int[], %b::int[]) "
                "AS u(enrolment_id, journey_id, step, kind, outcome, detail)",
                [
                    step_values,
                    kind_values,
                    outcome_values,
                    detail_values,
                    self.now,
                    [r.enrolment_id for r in runs],
                    [r.journey_id for r in runs],
                    steps,
                    kinds,
                    outcomes,
                    details,
                ],
            )


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


class Claimed:
    """A claimed enrolment as the steps see it: the columns they read and write, as plain attributes, and
    its version, journey and (when a step reads it: actions.with_customers) customer. A model instance per
    row (and the garbage collector's passes over them) was a third of a batch's time."""

    COLUMNS = (
        "id",
        "journey_id",
        "version_id",
        "customer_id",
        "holdout",
        "state",
        "step",
        "step_started_at",
        "wait_deadline",
        "wait_event",
        "next_at",
        "finished_at",
        "exit_reason",
    )
    __slots__ = (*COLUMNS, "version", "journey", "customer")

    def __init__(self, row: tuple, version: JourneyVersion, journey: Journey) -> None:
        (
            self.id,
            self.journey_id,
            self.version_id,
            self.customer_id,
            self.holdout,
            self.state,
            self.step,
            self.step_started_at,
            self.wait_deadline,
            self.wait_event,
            self.next_at,
            self.finished_at,
            self.exit_reason,
        ) = row
        self.version = version
        self.journey = journey
        self.customer = None

    @property
    def pk(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<claimed enrolment {self.id} of journey {self.journey_id} at step {self.step!r}>"


def _claim(now: datetime, limit: int) -> list[Claimed]:
    """Lock and read up to `limit` due enrolments of active journeys in one statement (SKIP LOCKED: rows
    another worker holds are passed over). Customers are not read here: the steps that need them read them
    for their group (actions.with_customers); a webhook with a fixed template never does."""
    columns = ", ".join(f"e.{c}" for c in Claimed.COLUMNS)
    active = list(Journey.objects.filter(status=Journey.Status.ACTIVE).values_list("pk", flat=True))
    if not active:
        return []
    with connection.cursor() as cursor:
        # The partial index on next_at (state = 'active') finds the due ones in order and stops at LIMIT;
        # nothing due is one probe. The active journeys go as a list: as a join (EXISTS) the planner
        # guessed few rows and read, joined and sorted every due enrolment at each claim (150 ms a claim
        # over 200,000 due, against 7 ms; bench/journeys.py).
        cursor.execute(
            f"SELECT {columns} FROM journeys_enrolment e WHERE e.state = 'active' AND e.next_at <= %s "  # noqa: S608
            "AND e.journey_id = ANY(%s::bigint[]) ORDER BY e.next_at LIMIT %s FOR UPDATE OF e SKIP LOCKED",
            [now, active, limit],
        )
        rows = cursor.fetchall()
    if not rows:
        return []
    # a batch holds a handful of journeys and versions: each is read once
    versions = JourneyVersion.objects.in_bulk({row[2] for row in rows})
    journeys = Journey.objects.select_related("owner", "campaign").in_bulk({row[1] for row in rows})
    return [Claimed(row, versions[row[2]], journeys[row[1]]) for row in rows]


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
