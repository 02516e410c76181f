"""The journey builder page, part by part (issue 20): every trigger kind, entry rule, step and action the
builder edits is saved exactly as the Step JSON contract writes it (the saved version's JSON equals what was
posted); invalid input comes back (422) with a message naming its place in words ("Step 2 › then › step
1 › …"), the user's input kept and nothing saved; allow and deny for the page, its save and its counts."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from journeys import builder, engine, services
from journeys.definition import program_of
from journeys.models import Journey
from tests.campaigns.factories import campaign_make
from tests.conftest import in_english
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db

ORDERED_RECENTLY = {"all": [{"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1}]}


@pytest.fixture
def vip():
    return f.manual_tag("vip")


@pytest.fixture
def draft(marketer, vip):
    return f.journey(marketer, tag=vip, steps=[{"wait": {"days": 1}}], activate_as=False)


def _save(client, journey, definition):
    return client.post(reverse("journeys:save", args=[journey.pk]), {"definition": json.dumps(definition)})


def _definition(*, trigger=None, entry=None, steps=None, goal=None):
    return {
        "trigger": trigger or {"kind": "tag_entered", "tag": "vip"},
        "entry": entry if entry is not None else {},
        "steps": steps if steps is not None else [],
        "goal": goal,
    }


def _saved(journey):
    version = services.latest_version(journey)
    return {"trigger": version.trigger, "entry": version.entry, "steps": version.steps, "goal": version.goal}


def _in_a_month():
    return (timezone.localtime() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")


# --- valid round trips: what the builder posts is what is stored ---------------------------------------

TRIGGERS = {
    "birthday_before": {"kind": "date", "attribute": "birth_date", "days_before": 3, "at": "09:00"},
    "anniversary_after": {
        "kind": "date",
        "attribute": "attributes.wedding_day",
        "days_after": 1,
        "at": "18:30",
    },
    "on_the_day": {"kind": "date", "attribute": "birth_date", "at": "08:00"},
    "schedule_daily": {"kind": "schedule", "tag": "vip", "every": "day", "at": "10:00"},
    "schedule_weekly": {"kind": "schedule", "tag": "vip", "every": "week", "weekday": 3, "at": "10:00"},
    "event_with_condition": {
        "kind": "event",
        "event": "order",
        "condition": {"amount": {"op": ">=", "value": 100}, "properties": {"channel": "app"}},
    },
    "tag_exited": {"kind": "tag_exited", "tag": "vip"},
    "tag_entered_exit_on_leave": {"kind": "tag_entered", "tag": "vip", "exit_on_leave": True},
}


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_every_trigger_kind_round_trips(client_for, marketer, draft, name):
    definition = _definition(trigger=TRIGGERS[name])
    response = _save(client_for(marketer), draft, definition)
    assert response.status_code == 302
    assert _saved(draft) == definition


def test_a_schedule_once_round_trips(client_for, marketer, draft):
    definition = _definition(trigger={"kind": "schedule", "tag": "vip", "at": _in_a_month()})
    assert _save(client_for(marketer), draft, definition).status_code == 302
    assert _saved(draft) == definition


@pytest.mark.parametrize(
    "entry",
    [
        {"reentry": "never"},
        {"reentry": "always", "percent": 50, "holdout_percent": 10},
        {"reentry": "after_days", "reentry_days": 30, "condition": ORDERED_RECENTLY},
    ],
    ids=["never", "always_with_shares", "after_days_with_condition"],
)
def test_every_entry_rule_round_trips(client_for, marketer, draft, entry):
    definition = _definition(entry=entry, goal={"event": "order", "within_days": 14})
    assert _save(client_for(marketer), draft, definition).status_code == 302
    assert _saved(draft) == definition


def _every_step(destination_id, template_id):
    return [
        {"wait": {"days": 1, "hours": 2}},
        {"wait": {"until": "2027-01-05T09:00"}},
        {
            "wait": {"until_event": "order", "timeout_days": 7},
            "then": [{"action": "email", "template": template_id}],
            "timeout": [
                {"action": "ticket", "title": "Call them", "type": "consultation", "urgency": "urgent"}
            ],
        },
        {
            "branch": {
                "if": ORDERED_RECENTLY,
                "then": [{"action": "tag_add", "tag": "vip"}],
                "else": [{"action": "tag_remove", "tag": "vip"}],
            }
        },
        {
            "split": [
                {"percent": 50, "steps": [{"action": "notify", "team": "E-commerce ops"}]},
                {"percent": 30, "steps": [{"action": "notify", "user": "boss", "message": "A VIP is back"}]},
                {"percent": 20, "steps": []},
            ]
        },
        {
            "action": "webhook",
            "destination": destination_id,
            "template": {"coupon": "{{customer.external_id}}"},
        },
        {"action": "touchpoint", "channel": "wechat"},
        {
            "action": "ticket",
            "title": "Follow up {{customer.external_id}}",
            "type": "data_support",
            "urgency": "routine",
            "description": "Check the order",
        },
        {"exit": True},
    ]


def test_every_step_and_action_round_trips(client_for, marketer, manager, vip):
    campaign = campaign_make(owner=marketer)
    journey = f.journey(marketer, tag=vip, campaign=campaign, activate_as=False)
    hook = f.webhook(manager, "http://127.0.0.1:9/hook", name="Coupons")
    template = services.email_template_create(
        by=None, name="Thanks", texts={"en": {"subject": "Hi", "body": "Hi"}}
    )
    definition = _definition(steps=_every_step(hook.pk, template.pk))
    response = _save(client_for(marketer), journey, definition)
    assert response.status_code == 302
    assert _saved(journey) == definition


def test_the_list_says_a_date_trigger_in_words(client_for, marketer, vip):
    f.journey(marketer, trigger=TRIGGERS["birthday_before"], activate_as=False)
    body = client_for(in_english(marketer)).get(reverse("journeys:list")).content.decode()
    assert "3 days before the anniversary of Birth date, at 09:00" in body


def test_the_builder_words_offer_every_step_kind_and_trigger_kind(marketer, draft):
    words = builder.builder_labels(journey=draft)
    assert [k for k, _ in words["stepKinds"]] == [
        "wait",
        "wait_until",
        "wait_event",
        "branch",
        "split",
        "email",
        "webhook",
        "notify",
        "ticket",
        "tag_add",
        "tag_remove",
        "touchpoint",
        "exit",
    ]
    assert [k for k, _ in words["triggerKinds"]] == ["tag_entered", "tag_exited", "event", "date", "schedule"]
    assert ["marketer", "marketer"] in words["users"]


# --- invalid input: its place in words, the input kept, nothing saved ---------------------------------

INVALID = {
    "split_not_100": (
        {"steps": [{"split": [{"percent": 50, "steps": []}, {"percent": 40, "steps": []}]}]},
        "Step 1 › Random split: the arms' percents must add up to 100 (they add up to 90)",
    ),
    "split_arm_step": (
        {
            "steps": [
                {"split": [{"percent": 50, "steps": []}, {"percent": 50, "steps": [{"action": "email"}]}]}
            ]
        },
        "Step 1 › path 2 › step 1 › Template: must be the id of an e-mail template",
    ),
    "wait_event_then": (
        {
            "steps": [
                {"wait": {"days": 1}},
                {
                    "wait": {"until_event": "order", "timeout_days": 2},
                    "then": [{"action": "tag_add", "tag": "nope"}],
                },
            ]
        },
        "Step 2 › then › step 1 › Tag: must be the slug of a manual tag",
    ),
    "wait_event_timeout": (
        {"steps": [{"wait": {"until_event": "order"}, "timeout": []}]},
        "Step 1 › Time out after days: is required (or timeout_hours)",
    ),
    "wait_until_date": (
        {"steps": [{"wait": {"until": ""}}]},
        "Step 1 › Until: must be an ISO 8601 date or date-time",
    ),
    "branch_else": (
        {
            "steps": [
                {
                    "branch": {
                        "if": ORDERED_RECENTLY,
                        "then": [],
                        "else": [{"action": "notify", "user": "ghost"}],
                    }
                }
            ]
        },
        "Step 1 › else › step 1 › Person: must be the username of an active staff member",
    ),
    "touchpoint_without_campaign": (
        {"steps": [{"action": "touchpoint", "channel": "sms"}]},
        "Step 1 › Action: a touchpoint needs the journey to belong to a campaign",
    ),
    "date_trigger_time": (
        {"trigger": {"kind": "date", "attribute": "birth_date", "days_before": 3, "at": "25:00"}},
        "Trigger › Time: must be a time of day HH:MM (company time zone)",
    ),
    "schedule_in_the_past": (
        {"trigger": {"kind": "schedule", "tag": "vip", "at": "2020-01-01T09:00"}},
        "Trigger › Time: must be in the future",
    ),
    "event_amount": (
        {"trigger": {"kind": "event", "event": "order", "condition": {"amount": {"op": ">="}}}},
        "Trigger › Condition › Amount › Value: must be a number",
    ),
    "reentry_days": (
        {"entry": {"reentry": "after_days"}},
        "Entry › Days before entering again: must be a whole number from 1 to 3650",
    ),
    "holdout": (
        {"entry": {"holdout_percent": 95}},
        "Entry › Holdout, in percent: must be a whole number from 0 to 90",
    ),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_input_names_its_place_keeps_the_input_and_saves_nothing(client_for, marketer, draft, name):
    parts, message = INVALID[name]
    definition = _definition(**parts)
    response = _save(client_for(in_english(marketer)), draft, definition)
    assert response.status_code == 422
    shown = [f"{e['where']}: {e['message']}" for e in response.context["errors"]]
    assert message in shown
    where, _, rest = message.partition(": ")
    assert f"<strong>{where}</strong>: {escape(rest)}" in response.content.decode()
    assert response.context["definition"] == definition  # the page shows what was posted
    assert draft.versions.count() == 1


# --- allow and deny ------------------------------------------------------------------------------------


def test_the_team_and_support_staff_open_the_builder(client_for, marketer, agent, draft):
    for viewer in (marketer, agent):
        response = client_for(viewer).get(reverse("journeys:detail", args=[draft.pk]))
        assert response.status_code == 200
        assert response.context["can_edit"] is True
        assert 'id="journey-builder"' in response.content.decode()


def test_the_builder_speaks_the_viewers_language(client_for, marketer, draft):
    # given a marketer who reads Chinese (the default), the builder's words arrive translated
    response = client_for(marketer).get(reverse("journeys:detail", args=[draft.pk]))
    kinds = dict(response.context["builder_i18n"]["stepKinds"])
    assert kinds["split"] == "随机分流" and kinds["branch"] != "If / else"


def test_another_team_and_a_stranger_may_not_open_the_builder(client, client_for, other_requester, draft):
    assert client_for(other_requester).get(reverse("journeys:detail", args=[draft.pk])).status_code == 404
    response = client.get(reverse("journeys:detail", args=[draft.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_support_staff_save_a_teams_journey(client_for, agent, draft):
    definition = _definition(steps=[{"split": [{"percent": 50, "steps": []}, {"percent": 50, "steps": []}]}])
    assert _save(client_for(agent), draft, definition).status_code == 302
    assert draft.versions.count() == 2


def test_an_archived_journey_cannot_be_saved(client_for, marketer, draft):
    Journey.objects.filter(pk=draft.pk).update(status=Journey.Status.ARCHIVED)
    response = _save(client_for(marketer), draft, _definition(steps=[{"exit": True}]))
    assert response.status_code == 403 and draft.versions.count() == 1
    page = client_for(marketer).get(reverse("journeys:detail", args=[draft.pk]))
    assert page.context["can_edit"] is False and 'id="save-journey"' not in page.content.decode()


def test_a_stranger_cannot_save(client, draft):
    response = _save(client, draft, _definition(steps=[{"exit": True}]))
    assert response.status_code == 302 and draft.versions.count() == 1


# --- live counts ---------------------------------------------------------------------------------------


def test_the_counts_refresh_carries_each_steps_counts(client_for, marketer, manager, vip):
    journey = f.journey(
        marketer,
        tag=vip,
        steps=[{"split": [{"percent": 100, "steps": [{"exit": True}]}, {"percent": 0, "steps": []}]}],
        activate_as=manager,
    )
    f.enter(vip, f.customers(3))
    f.admit()
    engine.run_due()
    response = client_for(marketer).get(reverse("journeys:stats", args=[journey.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'hx-get="{reverse("journeys:stats", args=[journey.pk])}"' in body
    data = json.loads(body.split('id="journey-stats-data" type="application/json">')[1].split("</script>")[0])
    assert data["0"]["passed"] == 3 and data["0.split0.0"]["passed"] == 3


def test_the_counts_refresh_reads_the_same_queries_for_few_or_many_steps(client_for, marketer, manager, vip):
    few = f.journey(marketer, tag=vip, steps=[{"exit": True}], activate_as=manager)
    many = f.journey(
        marketer, tag=vip, steps=[{"wait": {"days": 1}}] * 8 + [{"exit": True}], activate_as=manager
    )
    client = client_for(marketer)
    client.get(reverse("journeys:stats", args=[few.pk]))  # warm: the session and cached settings
    counted = []
    for journey in (few, many):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("journeys:stats", args=[journey.pk])).status_code == 200
        counted.append(len(queries))
    # (1) session (2) user (3) the journey, scoped to the viewer, with its active version (4) enrolment
    # counts (5) step outcomes, one GROUP BY (6) unread notifications (the context processor)
    assert counted == [6, 6]


def test_another_team_cannot_read_the_counts(client_for, other_requester, draft):
    assert client_for(other_requester).get(reverse("journeys:stats", args=[draft.pk])).status_code == 404


def test_a_refused_save_never_shows_a_planted_email_or_phone_to_a_viewer_without_view_pii(
    client_for, marketer, draft
):
    planted = {
        "any": [
            {"attr": "email", "op": "=", "value": "li.na.planted@example.com"},
            {"attr": "phone", "op": "=", "value": "13987654321"},
        ]
    }
    definition = _definition(
        entry={"condition": planted},
        steps=[
            {"split": [{"percent": 50, "steps": []}, {"percent": 40, "steps": [{"branch": {"if": planted}}]}]}
        ],
    )
    response = _save(client_for(marketer), draft, definition)
    assert response.status_code == 422 and response.context["errors"]
    body = response.content.decode()
    assert "li.na.planted@example.com" not in body and "13987654321" not in body
    assert draft.versions.count() == 1


# --- moving a step up or down (the builder keeps the ids the steps had, so their counts go with them) ---

A_MAIL = {"action": "tag_add", "tag": "vip"}
A_WAIT = {"wait": {"days": 2}}


@pytest.mark.parametrize(
    ("steps", "moved", "first_in_list"),
    [
        (
            [{"branch": {"if": ORDERED_RECENTLY, "then": [A_WAIT, A_MAIL], "else": []}}],
            [
                {
                    "branch": {
                        "if": ORDERED_RECENTLY,
                        "then": [{"id": "0.then.1", **A_MAIL}, {"id": "0.then.0", **A_WAIT}],
                        "else": [],
                    }
                }
            ],
            ("then", "0.then.1", "0.then.0"),
        ),
        (
            [{"split": [{"percent": 50, "steps": [A_WAIT, A_MAIL]}, {"percent": 50, "steps": []}]}],
            [
                {
                    "split": [
                        {
                            "percent": 50,
                            "steps": [{"id": "0.split0.1", **A_MAIL}, {"id": "0.split0.0", **A_WAIT}],
                        },
                        {"percent": 50, "steps": []},
                    ]
                }
            ],
            ("0", "0.split0.1", "0.split0.0"),
        ),
        (
            [{"wait": {"until_event": "order", "timeout_days": 3}, "then": [], "timeout": [A_WAIT, A_MAIL]}],
            [
                {
                    "wait": {"until_event": "order", "timeout_days": 3},
                    "then": [],
                    "timeout": [{"id": "0.timeout.1", **A_MAIL}, {"id": "0.timeout.0", **A_WAIT}],
                }
            ],
            ("timeout", "0.timeout.1", "0.timeout.0"),
        ),
    ],
    ids=["branch", "split", "wait"],
)
def test_a_step_moved_inside_a_path_is_stored_in_its_new_place_with_its_id(
    client_for, marketer, draft, steps, moved, first_in_list
):
    # given a draft with two steps in a branch's, a split's or a wait's path
    assert _save(client_for(marketer), draft, _definition(steps=steps)).status_code == 302
    # when the builder posts them swapped, each with the id (path) it had
    response = _save(client_for(marketer), draft, _definition(steps=moved))
    # then the version stores them in the new order, and the program walks them in it under their old ids
    assert response.status_code == 302
    assert _saved(draft)["steps"] == moved
    program = program_of(moved)
    arm, first, second = first_in_list
    assert program.nodes["0"].lists[arm] == first
    assert program.nodes[first].next == second and program.nodes[second].next is None


def test_a_moved_step_keeps_its_counts_in_the_refresh(client_for, marketer, manager, vip):
    # given an active journey whose first step (a wait of 0 hours) three customers passed
    journey = f.journey(
        marketer, tag=vip, steps=[{"wait": {"hours": 0}}, {"wait": {"days": 1}}], activate_as=manager
    )
    f.enter(vip, f.customers(3))
    f.admit()
    engine.run_due()
    client = client_for(marketer)
    # when the first step is moved down (the builder keeps both ids) and the new version activated
    moved = [{"id": "1", "wait": {"days": 1}}, {"id": "0", "wait": {"hours": 0}}]
    assert _save(client, journey, _definition(steps=moved)).status_code == 302
    services.journey_activate(journey=Journey.objects.get(pk=journey.pk), by=manager, percent=100)
    # then the stored steps are in the new order and the counts refresh still shows each step's counts
    assert _saved(journey)["steps"] == moved
    body = client.get(reverse("journeys:stats", args=[journey.pk])).content.decode()
    data = json.loads(body.split('id="journey-stats-data" type="application/json">')[1].split("</script>")[0])
    assert (data["0"]["kind"], data["0"]["passed"]) == ("wait", 3)
    assert (data["1"]["kind"], data["1"]["passed"]) == ("wait", 0)
    # and the builder page carries the moved definition with its ids
    page = client.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    shown = json.loads(
        page.split('id="journey-definition-data" type="application/json">')[1].split("</script>")[0]
    )
    assert shown["steps"] == moved


@pytest.mark.parametrize(
    ("steps", "path", "message"),
    [
        ([{"id": "0..1", "wait": {"days": 1}}], "steps[0].id", "with dots only between them"),
        (
            [
                {
                    "branch": {
                        "if": ORDERED_RECENTLY,
                        "then": [A_WAIT, {"id": "0.then.0", **A_MAIL}],
                        "else": [],
                    }
                }
            ],
            "steps[0].branch.then[1].id",
            "repeats the step id",
        ),
    ],
)
def test_a_bad_or_repeated_kept_id_is_refused_naming_the_step(
    client_for, marketer, draft, steps, path, message
):
    response = _save(client_for(in_english(marketer)), draft, _definition(steps=steps))
    assert response.status_code == 422
    errors = json.loads(
        response.content.decode()
        .split('id="journey-errors-data" type="application/json">')[1]
        .split("</script>")[0]
    )
    assert [e["path"] for e in errors] == [path] and message in errors[0]["message"]
    assert services.latest_version(draft).number == 1
