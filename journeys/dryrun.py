"""Dry run (back-test): what a journey would have done between two past moments, in the shape of its stats,
without sending anything or writing an enrolment.

The trigger is replayed from history (tag triggers: the entered / exited sets tag builds wrote; events: the
events of the period; dates and schedules: their occurrences, a schedule's members as of each occurrence
from the tag's membership history), admitted by the entry rules as of each moment, and walked through the
steps by the engine's own Runner on in-memory enrolments, in simulated time: waits advance the clock, a
branch evaluates its rule as of the simulated moment, a wait for an event sees the events of the period
up to that moment, a goal event converts. Actions are replaced by counting: consent as of the moment (from
the consent history; the current state where history says nothing), quiet hours, and a frequency cap
counted over this journey's own replayed contacts (other journeys' contacts are not replayed).
"""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from accounts.models import User
from crm_tags.models import Customer, Tag
from crm_tags.rules import compile_rule, gray_filter
from journeys import guards
from journeys.admission import gray_seed, holdout_seed
from journeys.definition import Node, parse_at, program_of
from journeys.engine import STEP_KINDS, Runner
from journeys.models import Destination, DryRun, EmailTemplate, Enrolment, Journey, JourneyVersion, StepRun
from journeys.selectors import _lift
from journeys.timed import _date_source, anniversary_for, local_days_at, occurrence_ref, schedule_occurrences
from privacy import consent

log = logging.getLogger(__name__)
MAX_PERIOD = timedelta(days=366)
ACTED, SKIPPED, FAILED = StepRun.Outcome.ACTED, StepRun.Outcome.SKIPPED, StepRun.Outcome.FAILED


@dataclass
class Entry:
    """Customers a trigger source admits at one moment (`exits`: who left the tag then, for exit_on_leave)."""

    at: datetime
    ref: str
    customers: list[int]
    exits: list[int] = field(default_factory=list)


# --- the trigger, replayed -------------------------------------------------------------------------------


def _tag_entries(trigger: dict, low: datetime, high: datetime) -> list[Entry]:
    tag_id = Tag.objects.filter(slug=trigger["tag"]).values_list("pk", flat=True).first()
    if tag_id is None:
        return []
    change = "entered" if trigger["kind"] == "tag_entered" else "exited"
    with connection.cursor() as cursor:
        # one row per build: its moment (the last change it wrote), who made the change, who left
        cursor.execute(
            "SELECT h.build_id, max(h.created_at), "
            "array_agg(DISTINCT h.customer_id) FILTER (WHERE h.change = %s), "
            "array_agg(DISTINCT h.customer_id) FILTER (WHERE h.change = 'exited') "
            "FROM crm_tags_tagmembershipchange h WHERE h.tag_id = %s AND h.created_at > %s "
            "AND h.created_at <= %s GROUP BY h.build_id ORDER BY max(h.created_at), h.build_id",
            [change, tag_id, low, high],
        )
        rows = cursor.fetchall()
    leave = bool(trigger.get("exit_on_leave"))
    return [
        Entry(at, f"b{build}", entered or [], (exited or []) if leave else [])
        for build, at, entered, exited in rows
    ]


def _event_entries(trigger: dict, low: datetime, high: datetime) -> list[Entry]:
    clauses = ["ev.event_type = %s", "ev.occurred_at > %s", "ev.occurred_at <= %s"]
    params: list[Any] = [trigger["event"], low, high]
    condition = trigger.get("condition") or {}
    if "amount" in condition:
        op = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}[condition["amount"]["op"]]
        clauses.append(f"ev.amount {op} %s")
        params.append(condition["amount"]["value"])
    if "properties" in condition:
        from psycopg.types.json import Jsonb

        clauses.append("ev.properties @> %s")
        params.append(Jsonb(condition["properties"]))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ev.id, ev.customer_id, ev.occurred_at FROM crm_tags_event ev WHERE {' AND '.join(clauses)} "  # noqa: S608
            "ORDER BY ev.occurred_at, ev.id",
            params,
        )
        return [Entry(at, f"e{pk}", [customer]) for pk, customer, at in cursor.fetchall()]


def _date_entries(trigger: dict, low: datetime, high: datetime) -> list[Entry]:
    entries = []
    for day, moment in local_days_at(parse_at(trigger["at"]), low, high):
        year, month_days = anniversary_for(trigger, day)
        sql, params = _date_source(trigger, year, month_days)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            entries.append(Entry(moment, f"d{year}", [row[0] for row in cursor.fetchall()]))
    return entries


def _schedule_entries(trigger: dict, low: datetime, high: datetime) -> list[Entry]:
    tag_id = Tag.objects.filter(slug=trigger["tag"]).values_list("pk", flat=True).first()
    if tag_id is None:
        return []
    entries = []
    for moment in schedule_occurrences(trigger, low, high):
        with connection.cursor() as cursor:
            # the members as of the occurrence: whose last change up to then was entering
            cursor.execute(
                "SELECT customer_id FROM (SELECT DISTINCT ON (h.customer_id) h.customer_id, h.change "
                "FROM crm_tags_tagmembershipchange h WHERE h.tag_id = %s AND h.created_at <= %s "
                "ORDER BY h.customer_id, h.created_at DESC, h.id DESC) last WHERE last.change = 'entered'",
                [tag_id, moment],
            )
            entries.append(Entry(moment, occurrence_ref(moment), [row[0] for row in cursor.fetchall()]))
    return entries


REPLAYS = {
    "tag_entered": _tag_entries,
    "tag_exited": _tag_entries,
    "event": _event_entries,
    "date": _date_entries,
    "schedule": _schedule_entries,
}


# --- actions, counted --------------------------------------------------------------------------------------


def consented_as_of(customer_ids: list[int], purpose: str, at: datetime) -> set[int]:
    """Who could be reached for `purpose` at `at`: the state the consent history says they were in then
    (the last change up to `at`, else what the first later change changed from), else the current one."""
    if not customer_ids:
        return set()
    consent.purpose_allowed_sql("c.id", purpose)  # refuses an unknown purpose
    include = consent_unknown_included()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id FROM unnest(%s::bigint[]) AS c(id) WHERE coalesce("
            "(SELECT ch.new_state FROM privacy_consentchange ch WHERE ch.customer_id = c.id AND ch.purpose = %s "
            "AND ch.at <= %s ORDER BY ch.at DESC, ch.id DESC LIMIT 1), "
            "(SELECT ch.old_state FROM privacy_consentchange ch WHERE ch.customer_id = c.id AND ch.purpose = %s "
            "AND ch.at > %s ORDER BY ch.at, ch.id LIMIT 1), "
            "(SELECT p.state FROM privacy_consent p WHERE p.customer_id = c.id AND p.purpose = %s), "
            "'unknown') = ANY(%s)",
            [
                customer_ids,
                purpose,
                at,
                purpose,
                at,
                purpose,
                ["granted", "unknown"] if include else ["granted"],
            ],
        )
        return {row[0] for row in cursor.fetchall()}


def consent_unknown_included() -> bool:
    from django.conf import settings

    return getattr(settings, "CONSENT_DEFAULT_UNKNOWN", "exclude") == "include"


class DryRunner(Runner):
    """The engine's Runner on in-memory enrolments: the same steps, but actions are counted, not done."""

    def __init__(self, enrolments: list[Enrolment], now: datetime, sim: "Simulation") -> None:
        super().__init__(enrolments, now)
        self.sim = sim
        self.events_until = now

    def step_handler(self, node: Node) -> Any:
        if node.kind == "action":
            return dry_action
        return STEP_KINDS[node.kind]


def _dry_guard(
    runner: DryRunner, node: Node, group: list[Enrolment], *, purpose: str, channel: str, facing: bool
) -> list[Enrolment]:
    """journeys.actions._guard, replayed: quiet hours hold, consent as of the moment and the cap skip."""
    if facing:
        until = guards.quiet_until(runner.now)
        if until is not None:
            for enrolment in group:
                runner.hold(enrolment, until)
            return []
    allowed = group
    if purpose:
        ok = consented_as_of([e.customer_id for e in group], purpose, runner.now)
        allowed = []
        for enrolment in group:
            if enrolment.customer_id in ok:
                allowed.append(enrolment)
            else:
                runner.advance(enrolment, node, SKIPPED, {"reason": "no_consent", "purpose": purpose})
    if facing:
        cap = guards.daily_cap(channel)
        day = runner.now.astimezone(guards.company_zone()).date()
        kept = []
        for enrolment in allowed:
            key = (enrolment.customer_id, channel, day)
            if runner.sim.contacts[key] < cap:
                runner.sim.contacts[key] += 1
                kept.append(enrolment)
            else:
                runner.advance(enrolment, node, SKIPPED, {"reason": "frequency_cap", "channel": channel})
        allowed = kept
    return allowed


def dry_action(runner: DryRunner, node: Node, group: list[Enrolment]) -> None:
    action, spec = node.action, node.spec
    passing = group
    if action == "webhook":
        destination = Destination.objects.filter(pk=spec.get("destination")).first()
        if destination is None:
            return _fail(runner, node, group, "destination_missing")
        channel = guards.CHANNEL_OF_PURPOSE.get(destination.purpose, "webhook")
        passing = _dry_guard(
            runner,
            node,
            group,
            purpose=destination.purpose,
            channel=channel,
            facing=destination.customer_facing,
        )
    elif action == "email":
        template = EmailTemplate.objects.filter(pk=spec.get("template")).first()
        if template is None:
            return _fail(runner, node, group, "template_missing")
        with_address = set(
            Customer.objects.filter(pk__in=[e.customer_id for e in group])
            .exclude(email="")
            .values_list("pk", flat=True)
        )
        for enrolment in group:
            if enrolment.customer_id not in with_address:
                runner.advance(enrolment, node, SKIPPED, {"reason": "no_address"})
        reachable = [e for e in group if e.customer_id in with_address]
        passing = _dry_guard(runner, node, reachable, purpose=template.purpose, channel="email", facing=True)
    elif action == "notify":
        users = User.objects.filter(is_active=True)
        users = (
            users.filter(team__name=spec["team"])
            if "team" in spec
            else users.filter(username=spec.get("user"))
        )
        if not users.exists():
            return _fail(runner, node, group, "no_recipient")
    elif action in ("tag_add", "tag_remove"):
        if not Tag.objects.filter(slug=spec.get("tag"), kind=Tag.Kind.MANUAL).exists():
            return _fail(runner, node, group, "tag_missing")
    elif action == "touchpoint" and runner.sim.journey.campaign_id is None:
        return _fail(runner, node, group, "campaign_missing")
    for enrolment in passing:
        runner.advance(enrolment, node, ACTED, {})
    return None


def _fail(runner: DryRunner, node: Node, group: list[Enrolment], reason: str) -> None:
    for enrolment in group:
        runner.advance(enrolment, node, FAILED, {"reason": reason})


# --- the simulation ----------------------------------------------------------------------------------------


class Simulation:
    """The clock and the in-memory enrolments of one dry run."""

    def __init__(self, journey: Journey, version: JourneyVersion, low: datetime, high: datetime) -> None:
        self.journey, self.version, self.low, self.high = journey, version, low, high
        self.entry = version.entry or {}
        self.goal = version.goal or {}
        self.first = program_of(version.steps).first or ""
        self.enrolments: list[Enrolment] = []
        self.by_customer: dict[int, list[Enrolment]] = defaultdict(list)
        self.goal_at: dict[int, datetime] = {}
        self.contacts: Counter = Counter()
        self.outcomes: Counter = Counter()  # (step, kind, outcome) -> count
        self._next_pk = 0

    # entry
    def _may_reenter(self, customer_id: int, now: datetime) -> bool:
        previous = self.by_customer.get(customer_id, [])
        reentry = self.entry.get("reentry", "never")
        if reentry == "never":
            return not previous
        if any(e.state == Enrolment.State.ACTIVE for e in previous):
            return False
        if reentry == "after_days":
            limit = now - timedelta(days=int(self.entry["reentry_days"]))
            return not any(e.entered_at > limit for e in previous)
        return True

    def _filter_sql(self, ids: list[int], where: str, params: list[Any]) -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id FROM unnest(%s::bigint[]) AS c(id) WHERE {where.replace('{cid}', 'c.id')}",  # noqa: S608
                [ids, *params],
            )
            return {row[0] for row in cursor.fetchall()}

    def admit(self, entry: Entry, now: datetime) -> None:
        for customer_id in entry.exits:
            for enrolment in self.by_customer.get(customer_id, []):
                if enrolment.state == Enrolment.State.ACTIVE:
                    self._finish(enrolment, Enrolment.State.EXITED, now, "left_tag")
        ids = sorted({c for c in entry.customers if self._may_reenter(c, now)})
        if ids and self.journey.percent < 100:
            ids = sorted(
                self._filter_sql(ids, *gray_filter(gray_seed(self.journey.pk), self.journey.percent))
            )
        if ids and self.entry.get("condition"):
            compiled = compile_rule(self.entry["condition"], as_of=now, only_ids=ids)
            with connection.cursor() as cursor:
                cursor.execute(compiled.sql, compiled.params)
                ids = sorted({row[0] for row in cursor.fetchall()} & set(ids))
        if not ids:
            return
        holdout_percent = int(self.entry.get("holdout_percent", 0))
        held = set()
        if holdout_percent:
            held = self._filter_sql(ids, *gray_filter(holdout_seed(self.journey.pk), holdout_percent))
        window = timedelta(days=int(self.goal["within_days"])) if self.goal else None
        goals = self._first_events(ids, self.goal["event"], now, now + window) if self.goal else {}
        for customer_id in ids:
            self._next_pk += 1
            holdout = customer_id in held
            enrolment = Enrolment(
                pk=self._next_pk,
                journey=self.journey,
                version=self.version,
                customer_id=customer_id,
                trigger_ref=entry.ref,
                holdout=holdout,
                state=Enrolment.State.ACTIVE,
                step=self.first,
                next_at=now + window if holdout and window else now,
                entered_at=now,
            )
            self.enrolments.append(enrolment)
            self.by_customer[customer_id].append(enrolment)
            if customer_id in goals:
                self.goal_at[enrolment.pk] = goals[customer_id]

    def _first_events(self, ids: list[int], event: str, low: datetime, high: datetime) -> dict[int, datetime]:
        """Each customer's first `event` in [low, min(high, end of the period)]."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT ev.customer_id, min(ev.occurred_at) FROM crm_tags_event ev "
                "WHERE ev.customer_id = ANY(%s) AND ev.event_type = %s AND ev.occurred_at >= %s "
                "AND ev.occurred_at <= %s GROUP BY ev.customer_id",
                [ids, event, low, min(high, self.high)],
            )
            return dict(cursor.fetchall())

    def _finish(self, enrolment: Enrolment, state: str, now: datetime, reason: str) -> None:
        enrolment.state, enrolment.next_at, enrolment.finished_at = state, None, now
        enrolment.exit_reason, enrolment.step = reason, ""

    # the clock
    def active(self) -> list[Enrolment]:
        return [e for e in self.enrolments if e.state == Enrolment.State.ACTIVE]

    def run(self, entries: list[Entry]) -> None:
        pending = sorted(entries, key=lambda e: e.at)
        position = 0
        while True:
            moments = [e.next_at for e in self.active() if e.next_at is not None]
            moments += [self.goal_at[e.pk] for e in self.active() if e.pk in self.goal_at]
            if position < len(pending):
                moments.append(pending[position].at)
            if not moments:
                break
            now = min(moments)
            if now > self.high:
                break
            # the order of a live tick: admission, then the event pass (goals, waits woken), then steps
            while position < len(pending) and pending[position].at <= now:
                self.admit(pending[position], now)
                position += 1
            for enrolment in self.active():
                at = self.goal_at.get(enrolment.pk)
                if at is not None and at <= now:
                    self._finish(enrolment, Enrolment.State.CONVERTED, now, "goal")
                    enrolment.converted_at = at
            due = [e for e in self.active() if e.next_at is not None and e.next_at <= now]
            if due:
                runner = DryRunner(due, now, self)
                runner.run()
                for run in runner.runs:
                    self.outcomes[(run.step, run.kind, run.outcome)] += 1
                self._wake_event_waits(due, now)

    def _wake_event_waits(self, group: list[Enrolment], now: datetime) -> None:
        """A wait for an event that arrives before its deadline resumes then (the live event pass wakes it)."""
        waiting = [e for e in group if e.state == Enrolment.State.ACTIVE and e.wait_event and e.next_at]
        by_event: dict[str, list[Enrolment]] = defaultdict(list)
        for enrolment in waiting:
            by_event[enrolment.wait_event].append(enrolment)
        for event, enrolments in by_event.items():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT w.id, (SELECT min(ev.occurred_at) FROM crm_tags_event ev "
                    "WHERE ev.customer_id = w.customer_id AND ev.event_type = %s AND ev.occurred_at >= w.since "
                    "AND ev.occurred_at <= %s) FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) "
                    "AS w(id, customer_id, since)",
                    [
                        event,
                        self.high,
                        [e.pk for e in enrolments],
                        [e.customer_id for e in enrolments],
                        [e.step_started_at for e in enrolments],
                    ],
                )
                arriving = {pk: at for pk, at in cursor.fetchall() if at is not None}
            for enrolment in enrolments:
                at = arriving.get(enrolment.pk)
                if at is not None and at < enrolment.next_at:
                    enrolment.next_at = max(at, now)

    def result(self) -> dict[str, Any]:
        walking = [e for e in self.enrolments if not e.holdout]
        held = [e for e in self.enrolments if e.holdout]
        converted = sum(1 for e in walking if e.state == Enrolment.State.CONVERTED)
        h_converted = sum(1 for e in held if e.state == Enrolment.State.CONVERTED)
        steps: dict[str, dict[str, Any]] = {}
        for node in program_of(self.version.steps).nodes.values():
            steps[node.id] = {"id": node.id, "kind": node.action or node.kind}
        for (step, kind, outcome), count in self.outcomes.items():
            row = steps.setdefault(step, {"id": step, "kind": kind})
            row[outcome] = row.get(outcome, 0) + count
        for row in steps.values():
            for outcome in StepRun.Outcome.values:
                row.setdefault(outcome, 0)
        lift, lift_ci = _lift((len(walking), converted), (len(held), h_converted))
        return {
            "entered": len(walking),
            "active": sum(1 for e in walking if e.state == Enrolment.State.ACTIVE),
            "converted": converted,
            "holdout": {"entered": len(held), "converted": h_converted},
            "lift": lift,
            "lift_ci": lift_ci,
            "steps": list(steps.values()),
        }


def journey_version_for_dry_run(journey: Journey) -> JourneyVersion:
    """The newest version: the one being designed (or running, when nothing newer was written)."""
    return journey.versions.order_by("-number").first()


def dry_run_compute(*, journey: Journey, low: datetime, high: datetime) -> dict[str, Any]:
    """What `journey` (its newest version) would have done in (low, high]; reads only."""
    version = journey_version_for_dry_run(journey)
    trigger = version.trigger
    simulation = Simulation(journey, version, low, high)
    simulation.run(REPLAYS[trigger["kind"]](trigger, low, high))
    return simulation.result()


def dry_run_execute(*, dry_run_id: int) -> None:
    """Run a queued dry run and store its result (or its failure)."""
    job = DryRun.objects.select_related("journey").filter(pk=dry_run_id).first()
    if job is None or job.status != DryRun.Status.RUNNING:
        return
    try:
        result = dry_run_compute(journey=job.journey, low=job.period_from, high=job.period_to)
    except Exception:  # noqa: BLE001 - any failure is the job's, reported as "failed"
        log.exception("dry run %s of journey %s failed", job.pk, job.journey_id)
        DryRun.objects.filter(pk=job.pk).update(
            status=DryRun.Status.FAILED, error="internal error", finished_at=timezone.now()
        )
        return
    DryRun.objects.filter(pk=job.pk).update(
        status=DryRun.Status.DONE, result=result, finished_at=timezone.now()
    )


class DryRunInvalid(ValueError):
    """A bad period: `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def dry_run_start(*, journey: Journey, by: User, low: datetime, high: datetime) -> DryRun:
    """Queue a dry run of `journey` over (low, high] (validated: a past period of at most MAX_PERIOD)."""
    from django.db import transaction
    from django.utils.translation import gettext as _

    from config.task_queue import enqueue

    if high <= low:
        raise DryRunInvalid("to", _("“to” must be after “from”."))
    if high - low > MAX_PERIOD:
        raise DryRunInvalid("to", _("The period may be at most %(days)s days.") % {"days": MAX_PERIOD.days})
    if high > timezone.now():
        raise DryRunInvalid("to", _("A dry run replays the past: “to” may not be in the future."))
    with transaction.atomic():
        job = DryRun.objects.create(journey=journey, requested_by=by, period_from=low, period_to=high)
        enqueue("journeys.tasks.dry_run", job.pk)
    return job
