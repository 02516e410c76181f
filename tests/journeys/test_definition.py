"""Validation of a journey's definition: every error names its path, nothing is saved."""

import pytest

from journeys import services
from journeys.definition import DefinitionInvalid, program_of
from journeys.models import Journey
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


def _errors(by, **definition):
    definition.setdefault("trigger", {"kind": "tag_entered", "tag": "vip"})
    with pytest.raises(DefinitionInvalid) as caught:
        services.journey_create(by=by, name="J", **definition)
    assert not Journey.objects.exists()
    return {e.path: e.message for e in caught.value.errors}


@pytest.fixture
def vip(db):
    return f.manual_tag("vip")


def test_a_bad_action_deep_in_a_branch_is_named_by_its_path(agent, vip):
    steps = [
        {"wait": {"days": 1}},
        {"exit": True},
        {
            "branch": {
                "if": {"attr": "city", "op": "=", "value": "X"},
                "then": [{"action": "fax"}],
                "else": [],
            }
        },
    ]
    errors = _errors(agent, steps=steps)
    assert list(errors) == ["steps[2].branch.then[0].action"]


def test_a_rule_error_inside_a_branch_or_entry_keeps_the_rule_path(agent, vip):
    steps = [{"branch": {"if": {"all": [{"attr": "city", "op": "~", "value": 1}]}, "then": [], "else": []}}]
    errors = _errors(
        agent,
        steps=steps,
        entry={"condition": {"any": [{"event": "order", "agg": "median", "op": ">", "value": 1}]}},
    )
    assert "steps[0].branch.if.all[0].op" in errors
    assert "entry.condition.any[0].agg" in errors


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"trigger": {"kind": "tag_entered", "tag": "nope"}}, "trigger.tag"),
        ({"trigger": {"kind": "birthday"}}, "trigger.kind"),
        ({"trigger": {"kind": "date", "at": "09:00"}}, "trigger.attribute"),
        ({"trigger": {"kind": "date", "attribute": "attributes.x y", "at": "09:00"}}, "trigger.attribute"),
        ({"trigger": {"kind": "date", "attribute": "birth_date", "at": "9am"}}, "trigger.at"),
        ({"trigger": {"kind": "date", "attribute": "birth_date", "at": "24:00"}}, "trigger.at"),
        (
            {"trigger": {"kind": "date", "attribute": "birth_date", "at": "09:00", "days_before": 400}},
            "trigger.days_before",
        ),
        (
            {
                "trigger": {
                    "kind": "date",
                    "attribute": "birth_date",
                    "at": "09:00",
                    "days_before": 1,
                    "days_after": 1,
                }
            },
            "trigger.days_after",
        ),
        (
            {"trigger": {"kind": "date", "attribute": "birth_date", "at": "09:00", "yearly": 1}},
            "trigger.yearly",
        ),
        ({"trigger": {"kind": "schedule", "tag": "nope", "every": "day", "at": "09:00"}}, "trigger.tag"),
        ({"trigger": {"kind": "schedule", "tag": "vip", "every": "month", "at": "09:00"}}, "trigger.every"),
        ({"trigger": {"kind": "schedule", "tag": "vip", "every": "day", "at": "2030-01-01"}}, "trigger.at"),
        ({"trigger": {"kind": "schedule", "tag": "vip", "at": "next monday"}}, "trigger.at"),
        ({"trigger": {"kind": "schedule", "tag": "vip", "at": "2020-01-01T09:00"}}, "trigger.at"),
        (
            {"trigger": {"kind": "schedule", "tag": "vip", "every": "day", "at": "09:00", "weekday": 1}},
            "trigger.weekday",
        ),
        (
            {"trigger": {"kind": "schedule", "tag": "vip", "every": "week", "at": "09:00", "weekday": 8}},
            "trigger.weekday",
        ),
        ({"steps": [{"action": "touchpoint", "channel": "sms"}]}, "steps[0].action"),
        (
            {
                "trigger": {
                    "kind": "event",
                    "event": "order",
                    "condition": {"amount": {"op": "~", "value": 1}},
                }
            },
            "trigger.condition.amount.op",
        ),
        ({"entry": {"reentry": "after_days"}}, "entry.reentry_days"),
        ({"entry": {"reentry": "sometimes"}}, "entry.reentry"),
        ({"entry": {"percent": 101}}, "entry.percent"),
        ({"entry": {"holdout_percent": -1}}, "entry.holdout_percent"),
        ({"goal": {"event": "order"}}, "goal.within_days"),
        ({"steps": [{"wait": {}}]}, "steps[0].wait"),
        ({"steps": [{"wait": {"days": "3"}}]}, "steps[0].wait.days"),
        ({"steps": [{"wait": {"until": "tomorrow"}}]}, "steps[0].wait.until"),
        ({"steps": [{"wait": {"until_event": "order"}}]}, "steps[0].wait.timeout_days"),
        ({"steps": [{"wait": {"days": 1}, "then": []}]}, "steps[0].then"),
        (
            {"steps": [{"split": [{"percent": 50, "steps": []}, {"percent": 40, "steps": []}]}]},
            "steps[0].split",
        ),
        ({"steps": [{"action": "webhook", "destination": 999}]}, "steps[0].destination"),
        ({"steps": [{"action": "email", "template": 999}]}, "steps[0].template"),
        ({"steps": [{"action": "notify", "team": "Nobody"}]}, "steps[0].team"),
        ({"steps": [{"action": "ticket", "title": "", "urgency": "now"}]}, "steps[0].title"),
        ({"steps": [{"action": "tag_add", "tag": "nope"}]}, "steps[0].tag"),
        ({"steps": [{"wait": {"days": 1}, "action": "email"}]}, "steps[0]"),
        ({"steps": [{"id": "a", "wait": {"days": 1}}, {"id": "a", "exit": True}]}, "steps[1].id"),
        ({"steps": "wait"}, "steps"),
    ],
)
def test_each_mistake_is_named(agent, vip, definition, path):
    assert path in _errors(agent, **definition)


@pytest.mark.parametrize(
    "trigger",
    [
        {"kind": "date", "attribute": "birth_date", "days_before": 3, "at": "09:00"},
        {"kind": "date", "attribute": "attributes.member_since", "days_after": 0, "at": "23:59"},
        {"kind": "schedule", "tag": "vip", "at": "2099-06-01T10:00:00+08:00"},
        {"kind": "schedule", "tag": "vip", "every": "day", "at": "08:30"},
        {"kind": "schedule", "tag": "vip", "every": "week", "weekday": 5, "at": "18:00"},
    ],
)
def test_date_and_schedule_triggers_are_accepted(agent, vip, trigger):
    journey = services.journey_create(by=agent, name="J", trigger=trigger)
    assert journey.versions.get().trigger == trigger


def test_a_touchpoint_is_refused_without_a_campaign_naming_the_path(agent, vip):
    errors = _errors(agent, steps=[{"wait": {"days": 1}}, {"action": "touchpoint", "channel": "sms"}])
    assert list(errors) == ["steps[1].action"]
    assert "campaign" in errors["steps[1].action"]


def test_a_touchpoint_needs_a_channel(agent, vip):
    from tests.campaigns.factories import campaign_make

    campaign = campaign_make(owner=agent, code="c1", name="C1")
    with pytest.raises(DefinitionInvalid) as caught:
        services.journey_create(
            by=agent,
            name="J",
            trigger={"kind": "tag_entered", "tag": "vip"},
            steps=[{"action": "touchpoint", "channel": "SMS!"}],
            campaign=campaign,
        )
    assert [e.path for e in caught.value.errors] == ["steps[0].channel"]


def test_a_webhook_template_with_a_personal_field_needs_a_purpose_destination(agent, vip):
    plain = f.webhook(agent, "http://127.0.0.1:1/x")
    errors = _errors(
        agent,
        steps=[{"action": "webhook", "destination": plain.pk, "template": {"to": "{{customer.email}}"}}],
    )
    assert "steps[0].template.to" in errors
    unknown = _errors(
        agent, steps=[{"action": "webhook", "destination": plain.pk, "template": {"x": "{{customer.shoe}}"}}]
    )
    assert "steps[0].template.x" in unknown


def test_step_ids_are_paths_or_given_ids_and_next_follows_the_tree(agent, vip):
    steps = [
        {
            "wait": {"until_event": "order", "timeout_days": 3},
            "then": [{"id": "thanks", "exit": True}],
            "timeout": [{"wait": {"days": 1}}],
        },
        {
            "branch": {
                "if": {"attr": "city", "op": "=", "value": "X"},
                "then": [{"wait": {"hours": 1}}],
                "else": [],
            }
        },
    ]
    program = program_of(steps)
    assert program.first == "0"
    assert set(program.nodes) == {"0", "thanks", "0.timeout.0", "1", "1.then.0"}
    assert program.nodes["0.timeout.0"].next == "1"
    assert program.nodes["1"].lists == {"then": "1.then.0", "else": None}
    assert program.nodes["thanks"].next is None


def test_an_activated_version_cannot_change(manager, vip):
    from django.core.exceptions import ValidationError

    journey = f.journey(manager, tag=vip, steps=[{"wait": {"days": 1}}])
    version = journey.active_version
    version.steps = []
    with pytest.raises(ValidationError):
        version.save()


def test_a_ticket_text_may_not_name_a_personal_field(agent, vip):
    errors = _errors(agent, steps=[{"action": "ticket", "title": "Call {{customer.phone}}"}])
    assert "steps[0].title" in errors


def test_the_renderer_masks_personal_values_unless_allowed(db):
    from journeys import templating

    person = f.customer(email="wang.fang@example.com", phone="13811112222", city="Nanjing")
    template = {"to": "{{customer.phone}}", "text": "Hi from {{customer.city}} <{{customer.email}}>", "n": 3}
    masked = templating.render(template, person, personal_allowed=False)
    assert "13811112222" not in str(masked) and "wang.fang@example.com" not in str(masked)
    assert masked["n"] == 3 and "Nanjing" in masked["text"]
    shown = templating.render(template, person, personal_allowed=True)
    assert shown["to"] == "13811112222" and "<wang.fang@example.com>" in shown["text"]
