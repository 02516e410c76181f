"""A journey's definition: the trigger, entry, steps and goal JSON, validated with every error named by its
path (`steps[2].branch.then[0].action`), and the step tree flattened into a program the engine walks.

Rule trees (an entry condition, a branch's `if`) are checked by the tag rule validator, their errors
prefixed with where they sit (`entry.condition.all[1].op`).
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from django.utils import timezone as django_timezone
from django.utils.translation import gettext as _

from crm_tags.rules import EVENT_TYPE, RuleError, parse_datetime_value, validate_rule
from journeys import templating

TAG_TRIGGERS = ("tag_entered", "tag_exited")
TIME_TRIGGERS = ("date", "schedule")
TRIGGER_KINDS = ("tag_entered", "tag_exited", "event", "date", "schedule")
REENTRY = ("never", "after_days", "always")
ACTIONS = ("webhook", "email", "notify", "ticket", "tag_add", "tag_remove", "touchpoint")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")
CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")  # as campaigns' channel_validator, at most 40
SCHEDULE_EVERY = ("day", "week")
MAX_OFFSET_DAYS = 365
# actions that reach the customer (consent, frequency cap and quiet hours apply; a webhook only when its
# destination is customer-facing or names a purpose)
# an id of the API's choosing, or a path the builder kept when it moved a step ("2.then.0"): dots only between
STEP_ID = re.compile(r"(?=.{1,200}\Z)[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*\Z")
AMOUNT_OPS = ("=", "!=", ">", ">=", "<", "<=")
MAX_STEPS = 500
MAX_DAYS = 3650
MAX_DEPTH = 20


class DefinitionInvalid(ValueError):
    """A journey definition that does not validate; `errors` name each problem's path."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.path or '(root)'}: {e.message}" for e in errors))


@dataclass
class Context:
    """What validation looks up: which tags, destinations, e-mail templates and teams exist."""

    manual_tags: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    destinations: dict[int, Any] = field(default_factory=dict)
    email_templates: set[int] = field(default_factory=set)
    teams: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    # the journey has a campaign (a touchpoint action needs one)
    has_campaign: bool = False
    # when set, a one-off schedule must lie after it (checked when a version is written, not at activation)
    now: datetime | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(value: Any, path: str, errors: list[RuleError], low: int, high: int) -> bool:
    if not _is_int(value) or not low <= value <= high:
        errors.append(
            RuleError(path, _("must be a whole number from %(low)d to %(high)d") % {"low": low, "high": high})
        )
        return False
    return True


def _unknown_keys(node: dict, allowed: tuple[str, ...], path: str, errors: list[RuleError]) -> None:
    for key in node:
        if key not in allowed:
            errors.append(
                RuleError(f"{path}.{key}" if path else str(key), _("unknown field %(key)r") % {"key": key})
            )


def _rule(node: Any, path: str, errors: list[RuleError], ctx: Context) -> None:
    for error in validate_rule(node, known_tags=ctx.tags):
        sub = error.path
        joined = path if not sub else (f"{path}{sub}" if sub.startswith("[") else f"{path}.{sub}")
        errors.append(RuleError(joined, error.message))


# --- trigger, entry, goal ----------------------------------------------------------------------------


def validate_trigger(trigger: Any, errors: list[RuleError], ctx: Context) -> None:
    if not isinstance(trigger, dict):
        errors.append(RuleError("trigger", _("must be an object with a kind")))
        return
    kind = trigger.get("kind")
    if kind not in TRIGGER_KINDS:
        errors.append(
            RuleError("trigger.kind", _("must be one of %(kinds)s") % {"kinds": ", ".join(TRIGGER_KINDS)})
        )
        return
    if kind == "date":
        _validate_date_trigger(trigger, errors)
        return
    if kind == "schedule":
        _validate_schedule_trigger(trigger, errors, ctx)
        return
    if kind in TAG_TRIGGERS:
        _unknown_keys(trigger, ("kind", "tag", "exit_on_leave"), "trigger", errors)
        tag = trigger.get("tag")
        if not isinstance(tag, str) or tag not in ctx.tags:
            errors.append(RuleError("trigger.tag", _("must be the slug of an existing tag")))
        if "exit_on_leave" in trigger:
            if not isinstance(trigger["exit_on_leave"], bool):
                errors.append(RuleError("trigger.exit_on_leave", _("must be true or false")))
            elif kind != "tag_entered" and trigger["exit_on_leave"]:
                errors.append(
                    RuleError("trigger.exit_on_leave", _("only a tag_entered trigger can exit on leave"))
                )
        return
    _unknown_keys(trigger, ("kind", "event", "condition"), "trigger", errors)
    event = trigger.get("event")
    if not isinstance(event, str) or not EVENT_TYPE.match(event):
        errors.append(RuleError("trigger.event", _("must be an event type (letters, digits, _ . -)")))
    condition = trigger.get("condition")
    if condition is None:
        return
    if not isinstance(condition, dict):
        errors.append(RuleError("trigger.condition", _("must be an object with amount and/or properties")))
        return
    _unknown_keys(condition, ("amount", "properties"), "trigger.condition", errors)
    amount = condition.get("amount")
    if amount is not None:
        if not isinstance(amount, dict) or amount.get("op") not in AMOUNT_OPS:
            errors.append(
                RuleError(
                    "trigger.condition.amount.op", _("must be one of %(ops)s") % {"ops": " ".join(AMOUNT_OPS)}
                )
            )
        elif not isinstance(amount.get("value"), (int, float)) or isinstance(amount.get("value"), bool):
            errors.append(RuleError("trigger.condition.amount.value", _("must be a number")))
    properties = condition.get("properties")
    if properties is not None:
        if not isinstance(properties, dict) or not properties:
            errors.append(
                RuleError("trigger.condition.properties", _("must be a non-empty object of key: value"))
            )
        else:
            for key, value in properties.items():
                if not isinstance(value, (str, int, float, bool)):
                    errors.append(
                        RuleError(
                            f"trigger.condition.properties.{key}", _("must be text, a number or true/false")
                        )
                    )


def parse_at(value: Any) -> time | None:
    """An "HH:MM" time of day (company time zone), or None when it is not one."""
    match = HHMM.match(value) if isinstance(value, str) else None
    return time(int(match[1]), int(match[2])) if match else None


def parse_moment(value: Any) -> datetime | None:
    """An ISO 8601 date-time; without an offset it is read in the company time zone."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if django_timezone.is_naive(moment):
        moment = django_timezone.make_aware(moment, django_timezone.get_default_timezone())
    return moment


def _validate_date_trigger(trigger: dict, errors: list[RuleError]) -> None:
    _unknown_keys(trigger, ("kind", "attribute", "days_before", "days_after", "at"), "trigger", errors)
    attribute = trigger.get("attribute")
    is_key = isinstance(attribute, str) and attribute.startswith("attributes.")
    if attribute != "birth_date" and not (is_key and ATTRIBUTE_KEY.match(attribute[len("attributes.") :])):
        errors.append(
            RuleError("trigger.attribute", _("must be birth_date or attributes.<key> (a date, YYYY-MM-DD)"))
        )
    if "days_before" in trigger and "days_after" in trigger:
        errors.append(RuleError("trigger.days_after", _("give days_before or days_after, not both")))
    for offset in ("days_before", "days_after"):
        if offset in trigger:
            _whole(trigger[offset], f"trigger.{offset}", errors, 0, MAX_OFFSET_DAYS)
    if parse_at(trigger.get("at")) is None:
        errors.append(RuleError("trigger.at", _("must be a time of day HH:MM (company time zone)")))


def _validate_schedule_trigger(trigger: dict, errors: list[RuleError], ctx: Context) -> None:
    _unknown_keys(trigger, ("kind", "tag", "at", "every", "weekday"), "trigger", errors)
    tag = trigger.get("tag")
    if not isinstance(tag, str) or tag not in ctx.tags:
        errors.append(RuleError("trigger.tag", _("must be the slug of an existing tag")))
    every = trigger.get("every")
    if every is None:
        if "weekday" in trigger:
            errors.append(RuleError("trigger.weekday", _("is only used with every week")))
        moment = parse_moment(trigger.get("at"))
        if moment is None:
            errors.append(
                RuleError("trigger.at", _("must be an ISO 8601 date-time (once), or give every with HH:MM"))
            )
        elif ctx.now is not None and moment <= ctx.now:
            errors.append(RuleError("trigger.at", _("must be in the future")))
        return
    if every not in SCHEDULE_EVERY:
        errors.append(
            RuleError("trigger.every", _("must be one of %(c)s") % {"c": ", ".join(SCHEDULE_EVERY)})
        )
    if parse_at(trigger.get("at")) is None:
        errors.append(RuleError("trigger.at", _("must be a time of day HH:MM (company time zone)")))
    if "weekday" in trigger:
        if every != "week":
            errors.append(RuleError("trigger.weekday", _("is only used with every week")))
        else:
            _whole(trigger["weekday"], "trigger.weekday", errors, 1, 7)


def validate_entry(entry: Any, errors: list[RuleError], ctx: Context) -> None:
    if entry is None:
        return
    if not isinstance(entry, dict):
        errors.append(RuleError("entry", _("must be an object")))
        return
    _unknown_keys(
        entry, ("reentry", "reentry_days", "condition", "percent", "holdout_percent"), "entry", errors
    )
    reentry = entry.get("reentry", "never")
    if reentry not in REENTRY:
        errors.append(
            RuleError("entry.reentry", _("must be one of %(choices)s") % {"choices": ", ".join(REENTRY)})
        )
    if reentry == "after_days":
        _whole(entry.get("reentry_days"), "entry.reentry_days", errors, 1, MAX_DAYS)
    elif "reentry_days" in entry:
        errors.append(RuleError("entry.reentry_days", _("is only used with reentry after_days")))
    if "condition" in entry and entry["condition"] is not None:
        _rule(entry["condition"], "entry.condition", errors, ctx)
    if "percent" in entry:
        _whole(entry["percent"], "entry.percent", errors, 0, 100)
    if "holdout_percent" in entry:
        _whole(entry["holdout_percent"], "entry.holdout_percent", errors, 0, 90)


def validate_goal(goal: Any, errors: list[RuleError]) -> None:
    if goal is None:
        return
    if not isinstance(goal, dict):
        errors.append(RuleError("goal", _("must be an object with event and within_days")))
        return
    _unknown_keys(goal, ("event", "within_days"), "goal", errors)
    if not isinstance(goal.get("event"), str) or not EVENT_TYPE.match(goal["event"]):
        errors.append(RuleError("goal.event", _("must be an event type (letters, digits, _ . -)")))
    _whole(goal.get("within_days"), "goal.within_days", errors, 1, MAX_DAYS)


# --- steps ---------------------------------------------------------------------------------------------


@dataclass
class Node:
    """One step of the flattened tree: its id, kind, JSON, the step after it, and the first step of each
    of its lists (None: the list is empty, so it goes on to `next`)."""

    id: str
    kind: str
    spec: dict
    path: str
    next: str | None = None
    lists: dict[str, str | None] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return self.spec.get("action", "")


class _Walker:
    def __init__(self, ctx: Context, errors: list[RuleError]) -> None:
        self.ctx = ctx
        self.errors = errors
        self.nodes: dict[str, Node] = {}
        self.count = 0

    def error(self, path: str, message: str) -> None:
        self.errors.append(RuleError(path, message))

    def walk_list(self, steps: Any, path: str, id_prefix: str, after: str | None, depth: int) -> str | None:
        """Validate and flatten a list of steps; returns the first step's id (or `after` when empty)."""
        if not isinstance(steps, list):
            self.error(path, _("must be a list of steps"))
            return after
        if depth > MAX_DEPTH:
            self.error(path, _("is nested deeper than %(n)d levels") % {"n": MAX_DEPTH})
            return after
        ids: list[str] = []
        nodes: list[tuple[Any, str, str]] = []
        for index, step in enumerate(steps):
            step_path = f"{path}[{index}]"
            explicit = step.get("id") if isinstance(step, dict) else None
            if explicit is not None and (not isinstance(explicit, str) or not STEP_ID.match(explicit)):
                self.error(
                    f"{step_path}.id", _("must be 1-200 letters, digits, _ or -, with dots only between them")
                )
                explicit = None
            step_id = explicit or f"{id_prefix}{index}"
            if step_id in self.nodes or step_id in ids:
                self.error(f"{step_path}.id", _("repeats the step id %(id)r") % {"id": step_id})
                step_id = f"{id_prefix}{index}~{len(self.nodes)}"
            ids.append(step_id)
            nodes.append((step, step_path, step_id))
        for index, (step, step_path, step_id) in enumerate(nodes):
            following = ids[index + 1] if index + 1 < len(ids) else after
            self.step(step, step_path, step_id, following, depth)
        return ids[0] if ids else after

    def step(self, step: Any, path: str, step_id: str, after: str | None, depth: int) -> None:
        self.count += 1
        if self.count > MAX_STEPS:
            if self.count == MAX_STEPS + 1:
                self.error(path, _("a journey has at most %(n)d steps") % {"n": MAX_STEPS})
            return
        if not isinstance(step, dict):
            self.error(path, _("must be an object (wait, branch, split, exit or action)"))
            return
        kinds = [k for k in ("wait", "branch", "split", "exit", "action") if k in step]
        if len(kinds) != 1:
            self.error(path, _("must have exactly one of wait, branch, split, exit, action"))
            return
        kind = kinds[0]
        node = Node(id=step_id, kind=kind, spec=step, path=path, next=after)
        self.nodes[step_id] = node
        getattr(self, f"step_{kind}")(node, depth)

    def step_exit(self, node: Node, depth: int) -> None:
        _unknown_keys(node.spec, ("exit", "id"), node.path, self.errors)
        node.next = None

    def step_wait(self, node: Node, depth: int) -> None:
        spec, path = node.spec, node.path
        wait = spec["wait"]
        if not isinstance(wait, dict) or not wait:
            self.error(f"{path}.wait", _("must be an object: days/hours, until, or until_event"))
            return
        if "until_event" in wait:
            _unknown_keys(spec, ("wait", "then", "timeout", "id"), path, self.errors)
            _unknown_keys(wait, ("until_event", "timeout_days", "timeout_hours"), f"{path}.wait", self.errors)
            if not isinstance(wait["until_event"], str) or not EVENT_TYPE.match(wait["until_event"]):
                self.error(f"{path}.wait.until_event", _("must be an event type (letters, digits, _ . -)"))
            if "timeout_days" not in wait and "timeout_hours" not in wait:
                self.error(f"{path}.wait.timeout_days", _("is required (or timeout_hours)"))
            self._durations(wait, f"{path}.wait", ("timeout_days", "timeout_hours"))
            node.lists["then"] = self.walk_list(
                spec.get("then", []), f"{path}.then", f"{node.id}.then.", node.next, depth + 1
            )
            node.lists["timeout"] = self.walk_list(
                spec.get("timeout", []), f"{path}.timeout", f"{node.id}.timeout.", node.next, depth + 1
            )
            return
        _unknown_keys(spec, ("wait", "id"), path, self.errors)
        if "until" in wait:
            _unknown_keys(wait, ("until",), f"{path}.wait", self.errors)
            try:
                parse_datetime_value(wait["until"]) if isinstance(wait["until"], str) else None
                if not isinstance(wait["until"], str):
                    raise ValueError
            except ValueError:
                self.error(f"{path}.wait.until", _("must be an ISO 8601 date or date-time"))
            return
        _unknown_keys(wait, ("days", "hours"), f"{path}.wait", self.errors)
        if "days" not in wait and "hours" not in wait:
            self.error(f"{path}.wait", _("must give days, hours, until or until_event"))
        self._durations(wait, f"{path}.wait", ("days", "hours"))

    def _durations(self, wait: dict, path: str, keys: tuple[str, str]) -> None:
        days, hours = keys
        if days in wait:
            _whole(wait[days], f"{path}.{days}", self.errors, 0, MAX_DAYS)
        if hours in wait:
            _whole(wait[hours], f"{path}.{hours}", self.errors, 0, MAX_DAYS * 24)

    def step_branch(self, node: Node, depth: int) -> None:
        spec, path = node.spec, node.path
        _unknown_keys(spec, ("branch", "id"), path, self.errors)
        branch = spec["branch"]
        if not isinstance(branch, dict):
            self.error(f"{path}.branch", _("must be an object with if, then and else"))
            return
        _unknown_keys(branch, ("if", "then", "else"), f"{path}.branch", self.errors)
        if "if" not in branch:
            self.error(f"{path}.branch.if", _("is required (a rule tree)"))
        else:
            _rule(branch["if"], f"{path}.branch.if", self.errors, self.ctx)
        for key in ("then", "else"):
            node.lists[key] = self.walk_list(
                branch.get(key, []), f"{path}.branch.{key}", f"{node.id}.{key}.", node.next, depth + 1
            )

    def step_split(self, node: Node, depth: int) -> None:
        spec, path = node.spec, node.path
        _unknown_keys(spec, ("split", "id"), path, self.errors)
        arms = spec["split"]
        if not isinstance(arms, list) or len(arms) < 2:
            self.error(f"{path}.split", _("must be a list of at least two arms {percent, steps}"))
            return
        total = 0
        for index, arm in enumerate(arms):
            arm_path = f"{path}.split[{index}]"
            if not isinstance(arm, dict):
                self.error(arm_path, _("must be an object {percent, steps}"))
                continue
            _unknown_keys(arm, ("percent", "steps"), arm_path, self.errors)
            if _whole(arm.get("percent"), f"{arm_path}.percent", self.errors, 0, 100):
                total += arm["percent"]
            node.lists[str(index)] = self.walk_list(
                arm.get("steps", []), f"{arm_path}.steps", f"{node.id}.split{index}.", node.next, depth + 1
            )
        if total != 100 and not any(e.path.startswith(f"{path}.split") for e in self.errors):
            self.error(
                f"{path}.split",
                _("the arms' percents must add up to 100 (they add up to %(n)d)") % {"n": total},
            )

    def step_action(self, node: Node, depth: int) -> None:
        spec, path = node.spec, node.path
        action = spec["action"]
        if action not in ACTIONS:
            self.error(f"{path}.action", _("must be one of %(actions)s") % {"actions": ", ".join(ACTIONS)})
            return
        if action == "webhook":
            _unknown_keys(spec, ("action", "destination", "template", "id"), path, self.errors)
            destination = (
                self.ctx.destinations.get(spec.get("destination"))
                if _is_int(spec.get("destination"))
                else None
            )
            if destination is None or destination.kind != "webhook":
                self.error(f"{path}.destination", _("must be the id of a webhook destination"))
            template = spec.get("template", {})
            for field_path in templating.template_errors(template, f"{path}.template"):
                self.error(field_path, _("is not a known customer field; use customer.<field>"))
            if destination is not None and not destination.purpose:
                for field_path, name in templating.personal_placeholders(template, f"{path}.template"):
                    self.error(
                        field_path,
                        _("%(field)s is personal: only a destination with a consent purpose may receive it")
                        % {"field": name},
                    )
        elif action == "email":
            _unknown_keys(spec, ("action", "template", "id"), path, self.errors)
            if not _is_int(spec.get("template")) or spec["template"] not in self.ctx.email_templates:
                self.error(f"{path}.template", _("must be the id of an e-mail template"))
        elif action == "notify":
            _unknown_keys(spec, ("action", "team", "user", "message", "id"), path, self.errors)
            if ("team" in spec) == ("user" in spec):
                self.error(path, _("must name either a team or a user to notify"))
            elif "team" in spec and (not isinstance(spec["team"], str) or spec["team"] not in self.ctx.teams):
                self.error(f"{path}.team", _("must be the name of a team"))
            elif "user" in spec and (not isinstance(spec["user"], str) or spec["user"] not in self.ctx.users):
                self.error(f"{path}.user", _("must be the username of an active staff member"))
            if "message" in spec and (not isinstance(spec["message"], str) or len(spec["message"]) > 500):
                self.error(f"{path}.message", _("must be text of at most 500 characters"))
        elif action == "ticket":
            from tickets.models import Ticket

            _unknown_keys(
                spec, ("action", "title", "type", "urgency", "description", "id"), path, self.errors
            )
            if (
                not isinstance(spec.get("title"), str)
                or not spec["title"].strip()
                or len(spec["title"]) > 200
            ):
                self.error(f"{path}.title", _("must be text of 1 to 200 characters"))
            if spec.get("type", "data_support") not in Ticket.Type.values:
                self.error(f"{path}.type", _("must be one of %(c)s") % {"c": ", ".join(Ticket.Type.values)})
            if spec.get("urgency", "routine") not in Ticket.Urgency.values:
                self.error(
                    f"{path}.urgency", _("must be one of %(c)s") % {"c": ", ".join(Ticket.Urgency.values)}
                )
            for key in ("title", "description"):
                if isinstance(spec.get(key), str):
                    for field_path in templating.template_errors(spec[key], f"{path}.{key}"):
                        self.error(field_path, _("is not a known customer field; use customer.<field>"))
                    for field_path, name in templating.personal_placeholders(spec[key], f"{path}.{key}"):
                        self.error(
                            field_path,
                            _("%(field)s is personal and cannot go into a ticket") % {"field": name},
                        )
        elif action == "touchpoint":
            _unknown_keys(spec, ("action", "channel", "id"), path, self.errors)
            if not self.ctx.has_campaign:
                self.error(f"{path}.action", _("a touchpoint needs the journey to belong to a campaign"))
            if not isinstance(spec.get("channel"), str) or not CHANNEL.match(spec["channel"]):
                self.error(
                    f"{path}.channel",
                    _(
                        "must be a channel: lower-case letters, digits, dots, hyphens and underscores (at most 40)"
                    ),
                )
        else:
            _unknown_keys(spec, ("action", "tag", "id"), path, self.errors)
            if not isinstance(spec.get("tag"), str) or spec["tag"] not in self.ctx.manual_tags:
                self.error(f"{path}.tag", _("must be the slug of a manual tag"))


@dataclass
class Program:
    """A version's steps flattened: `first` is where an enrolment starts (None: no steps)."""

    first: str | None
    nodes: dict[str, Node]


def validate_definition(
    *, trigger: Any, entry: Any, steps: Any, goal: Any, ctx: Context
) -> tuple[list[RuleError], Program]:
    """Every problem of a journey definition with its path; the program is only meaningful when none."""
    errors: list[RuleError] = []
    validate_trigger(trigger, errors, ctx)
    validate_entry(entry, errors, ctx)
    validate_goal(goal, errors)
    walker = _Walker(ctx, errors)
    if not isinstance(steps, list):
        errors.append(RuleError("steps", _("must be a list of steps")))
        return errors, Program(None, {})
    first = walker.walk_list(steps, "steps", "", None, 0)
    return errors, Program(first, walker.nodes)


def program_of(steps: list) -> Program:
    """The program of stored (validated) steps; lookups are not needed to flatten."""
    walker = _Walker(Context(), [])
    first = walker.walk_list(steps, "steps", "", None, 0)
    return Program(first, walker.nodes)


def wait_until(spec: dict, start: datetime) -> datetime:
    """When a duration or date wait ends for an enrolment that reached it at `start`."""
    from datetime import timedelta

    wait = spec["wait"]
    if "until" in wait:
        return parse_datetime_value(wait["until"])
    if "until_event" in wait:
        return start + timedelta(days=wait.get("timeout_days", 0), hours=wait.get("timeout_hours", 0))
    return start + timedelta(days=wait.get("days", 0), hours=wait.get("hours", 0))
