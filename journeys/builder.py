"""The journey builder's words and choices (every code a definition stores reaches the page as a translated
label, so a marketer never types JSON) and the places of a refused definition's errors in words
("Step 2 › then › step 1 › E-mail template"), so a message says where it is as a marketer sees the flow."""

import re
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.models import Team, User
from crm_tags import rule_builder
from crm_tags.models import Tag
from crm_tags.rules import RuleError
from journeys.definition import AMOUNT_OPS
from journeys.models import Destination, EmailTemplate, Journey
from tickets.models import Ticket

SEPARATOR = " › "
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def trigger_kind_choices() -> list[tuple[str, str]]:
    return [
        ("tag_entered", _("enters a tag")),
        ("tag_exited", _("leaves a tag")),
        ("event", _("does something (an event)")),
        ("date", _("has a yearly date, such as a birthday")),
        ("schedule", _("is in a tag at a scheduled time")),
    ]


def trigger_time_choices() -> dict[str, list]:
    """The choices of a yearly-date and a schedule trigger (the builder's and the new-journey form's)."""
    return {
        "dateAttributes": [["birth_date", _("Birth date")], ["attributes.", _("other date detail …")]],
        "offsets": [["before", _("days before")], ["on", _("on the day")], ["after", _("days after")]],
        "repeats": [["once", _("once")], ["day", _("every day")], ["week", _("every week")]],
        "weekdays": [
            [1, _("Monday")],
            [2, _("Tuesday")],
            [3, _("Wednesday")],
            [4, _("Thursday")],
            [5, _("Friday")],
            [6, _("Saturday")],
            [7, _("Sunday")],
        ],
    }


def step_kind_choices() -> list[list[str]]:
    """The kinds of step the builder adds; the three waits are one `wait` step each with its own fields."""
    return [
        ["wait", _("Wait")],
        ["wait_until", _("Wait until a date and time")],
        ["wait_event", _("Wait for an event")],
        ["branch", _("If / else")],
        ["split", _("Random split")],
        ["email", _("Send an e-mail")],
        ["webhook", _("Call a webhook")],
        ["notify", _("Notify a team or a person")],
        ["ticket", _("Create a request")],
        ["tag_add", _("Add to a tag")],
        ["tag_remove", _("Remove from a tag")],
        ["touchpoint", _("Campaign touchpoint")],
        ["exit", _("Exit")],
    ]


def _field_words() -> dict[str, str]:
    """Definition keys as the builder labels them (an error's last part)."""
    return {
        "kind": _("Kind"),
        "tag": _("Tag"),
        "event": _("Event"),
        "exit_on_leave": _("Leave the journey when they leave the tag"),
        "attribute": _("Date"),
        "days_before": _("Days before"),
        "days_after": _("Days after"),
        "at": _("Time"),
        "every": _("Repeat"),
        "weekday": _("Weekday"),
        "amount": _("Amount"),
        "properties": _("Properties"),
        "op": _("Comparison"),
        "value": _("Value"),
        "reentry": _("Enter again"),
        "reentry_days": _("Days before entering again"),
        "percent": _("Percent"),
        "holdout_percent": _("Holdout, in percent"),
        "within_days": _("within days"),
        "wait": _("Wait"),
        "days": _("days"),
        "hours": _("hours"),
        "until": _("Until"),
        "until_event": _("Event to wait for"),
        "timeout_days": _("Time out after days"),
        "timeout_hours": _("Time out after hours"),
        "action": _("Action"),
        "template": _("Template"),
        "destination": _("Destination"),
        "team": _("Team"),
        "user": _("Person"),
        "message": _("Message"),
        "title": _("Title"),
        "type": _("Type"),
        "urgency": _("Urgency"),
        "description": _("Description"),
        "channel": _("Channel"),
        "condition": _("Condition"),
        "split": _("Random split"),
        "id": _("Step ID"),
    }


def error_where(path: str) -> str:
    """An error's path in words: `steps[1].branch.then[0].template` → "Step 2 › then › step 1 › Template";
    inside a rule tree (a condition) the rest of the path stays as the tag rule builder names it."""
    matches = list(_TOKEN.finditer(path or ""))
    tokens = [(m[1], int(m[2]) if m[2] else None) for m in matches]
    heads = {"trigger": _("Trigger"), "entry": _("Entry"), "goal": _("Goal"), "name": _("Name")}
    arms = {"then": _("then"), "else": _("else"), "timeout": _("timeout")}
    fields = _field_words()
    parts: list[str] = []
    i = 0
    while i < len(tokens):
        name, index = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if name == "steps" and following is not None:
            parts.append((_("Step %(n)d") if not parts else _("step %(n)d")) % {"n": following + 1})
            i += 2
        elif name in arms and following is not None and parts:
            parts += [arms[name], _("step %(n)d") % {"n": following + 1}]
            i += 2
        elif name == "split" and following is not None:
            parts.append(_("path %(n)d") % {"n": following + 1})
            i += 2
        elif name in ("if", "condition") and parts and tokens[0][0] != "trigger":
            parts.append(_("condition"))
            rest = path[matches[i].end() :].lstrip(".")
            if rest:
                parts.append(rest)
            break
        elif name == "branch" or (name == "wait" and i + 1 < len(tokens)):
            i += 1  # the step's own object: its fields speak for it
        elif not parts and name in heads:
            parts.append(heads[name])
            i += 1
        else:
            parts.append(fields.get(name, name) if index is None else f"[{index}]")
            i += 1
    return SEPARATOR.join(parts) if parts else _("The journey")


def errors_for_page(errors: list[RuleError]) -> list[dict[str, str]]:
    """A refused definition's errors for the page: path (where the script places it), its place in words
    and the message."""
    return [{"path": e.path, "where": error_where(e.path), "message": e.message} for e in errors]


def _staff_and_team(journey: Journey) -> list[list[str]]:
    people = (
        User.objects.filter(is_active=True)
        .filter(Q(team__is_support=True) | Q(team_id=journey.team_id))
        .order_by("username")
        .values_list("username", "first_name", "last_name")
    )
    return [[u, " ".join(p for p in (u, f"{first} {last}".strip()) if p)] for u, first, last in people]


def builder_labels(*, journey: Journey) -> dict[str, Any]:
    """Everything the journey builder's script shows, translated, and the choices it offers."""
    rules = rule_builder.builder_labels(tags=[])
    ops = dict(rules["numericOps"])
    channels = list(journey.campaign.channels) if journey.campaign_id and journey.campaign else []
    return {
        "triggerKinds": trigger_kind_choices(),
        "tags": list(Tag.objects.order_by("name").values_list("slug", "name")),
        "manualTags": list(
            Tag.objects.filter(kind=Tag.Kind.MANUAL).order_by("name").values_list("slug", "name")
        ),
        "events": rules["events"],
        "amountOps": [[op, ops.get(op, op)] for op in AMOUNT_OPS],
        **trigger_time_choices(),
        "destinations": [
            [d.pk, d.name]
            for d in Destination.objects.filter(kind=Destination.Kind.WEBHOOK)
            .order_by("name")
            .only("pk", "name")
        ],
        "emailTemplates": list(EmailTemplate.objects.order_by("name").values_list("pk", "name")),
        "teams": list(Team.objects.order_by("name").values_list("name", "name")),
        "users": _staff_and_team(journey),
        "notifyWho": [["team", _("a team")], ["user", _("a person")]],
        "ticketTypes": [[code, str(label)] for code, label in Ticket.Type.choices],
        "ticketUrgencies": [[code, str(label)] for code, label in Ticket.Urgency.choices],
        "channels": channels,
        "hasCampaign": journey.campaign_id is not None,
        "reentry": [
            ["never", _("never: once per customer")],
            ["after_days", _("again after some days")],
            ["always", _("every time")],
        ],
        "stepKinds": step_kind_choices(),
        "words": {
            "trigger": _("Trigger"),
            "customer": _("A customer"),
            "tag": _("Tag"),
            "event": _("Event"),
            "exitOnLeave": _("Leave the journey when they leave the tag"),
            "dateAttribute": _("Date"),
            "attributeKey": _("Detail name"),
            "offset": _("When"),
            "offsetDays": _("Days"),
            "at": _("At (company time zone)"),
            "repeat": _("Repeat"),
            "onceAt": _("On (company time zone)"),
            "weekday": _("Weekday"),
            "amountCondition": _("Only when the amount matches"),
            "amountOp": _("Amount"),
            "amountValue": _("Value"),
            "propertyCondition": _("Only when properties match"),
            "propertyKey": _("Property"),
            "propertyValue": _("Equals"),
            "addProperty": _("Add a property"),
            "entry": _("Entry"),
            "reentry": _("Enter again"),
            "reentryDays": _("Days before entering again"),
            "percent": _("Gray share, in percent"),
            "holdout": _("Holdout, in percent"),
            "entryCondition": _("Only customers who match a condition"),
            "goal": _("Goal"),
            "goalOn": _("Count as converted when the customer does"),
            "withinDays": _("within days"),
            "steps": _("Steps"),
            "addStep": _("Add a step"),
            "addStepHere": _("Add a step here"),
            "remove": _("Remove step"),
            "moveUp": _("Move step up"),
            "moveDown": _("Move step down"),
            "days": _("days"),
            "hours": _("hours"),
            "until": _("Until (company time zone)"),
            "untilEvent": _("Event to wait for"),
            "timeoutDays": _("Time out after days"),
            "timeoutHours": _("Time out after hours"),
            "arrived": _("If the event arrives"),
            "timedOut": _("If it times out"),
            "editCondition": _("Edit condition"),
            "conditionSet": _("Customers who match the condition"),
            "conditionNone": _("No condition yet"),
            "then": _("If they match"),
            "else": _("Otherwise"),
            "path": _("Path"),
            "pathPercent": _("Percent of customers"),
            "addPath": _("Add a path"),
            "removePath": _("Remove path"),
            "splitTotal": _("Together"),
            "splitMustBe100": _("the paths' percents must add up to 100"),
            "template": _("E-mail template"),
            "destination": _("Destination"),
            "payloadKey": _("Payload field"),
            "payloadValue": _("Value"),
            "addPayload": _("Add a payload field"),
            "notifyWho": _("Notify"),
            "team": _("Team"),
            "user": _("Person"),
            "message": _("Message"),
            "title": _("Title"),
            "ticketType": _("Type"),
            "urgency": _("Urgency"),
            "description": _("Description"),
            "channel": _("Channel"),
            "needsCampaign": _("A touchpoint needs the journey to belong to a campaign."),
            "noChoices": _("(none yet)"),
            "other": _("A step edited through the API; the builder keeps it as it is."),
            "exit": _("The customer leaves the journey here."),
            "end": _("End of the journey"),
            "passed": _("passed"),
            "acted": _("acted"),
            "skipped": _("skipped"),
            "failed": _("failed"),
        },
    }
