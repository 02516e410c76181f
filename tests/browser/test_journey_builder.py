"""Playwright: the journey builder edits every trigger, entry rule, step and action from dropdowns, date and
time pickers and number boxes, and stores exactly the Step JSON contract (issue 20): a birthday trigger, a
50/50 split and a wait for an event with a timeout path; an event trigger with its conditions, entry rules
and the remaining actions; a refused split names its place and keeps the input; the step counts refresh by
htmx without a reload."""

import pytest
from playwright.sync_api import expect

from journeys import engine, services
from tests.campaigns.factories import campaign_make
from tests.conftest import browser_login, in_english
from tests.journeys import factories as f

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.JOURNEYS_QUIET_HOURS = (0, 0)
    settings.JOURNEYS_FREQUENCY_CAP_DEFAULT = 100
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _add_step(page, list_path: str, kind: str) -> None:
    adder = page.locator(f'[data-list="{list_path}"] > .journey-add')
    adder.get_by_label("Add a step here").select_option(label=kind)
    adder.locator("[data-action=add-step]").click()


def _field(page, path: str, field: str):
    return page.locator(f'[data-path="{path}"] [data-field="{field}"]').first


def _draft(owner, **fields):
    return services.journey_create(
        by=owner, name=fields.pop("name", "Draft"), trigger={"kind": "tag_entered", "tag": "vip"}, **fields
    )


def test_a_birthday_journey_with_a_split_and_a_wait_for_an_order_is_built_without_json(page, make_user):
    mia = in_english(make_user("mia", role="requester", team="E-commerce ops"))
    f.manual_tag("vip")
    thanks = services.email_template_create(
        by=None, name="Birthday wishes", texts={"en": {"subject": "Happy birthday", "body": "Hi"}}
    )
    journey = _draft(mia, name="Birthday")
    browser_login(page, "mia", "pw-mia-123")
    page.goto(f"/journeys/{journey.pk}/")

    # the trigger: three days before the birthday's anniversary, at 09:00
    _field(page, "trigger", "trigger-kind").select_option(label="has a yearly date, such as a birthday")
    expect(_field(page, "trigger", "date-attribute")).to_have_value("birth_date")
    _field(page, "trigger", "offset").select_option(label="days before")
    _field(page, "trigger", "offset-days").fill("3")
    _field(page, "trigger", "at").fill("09:00")

    # a random split, 50 / 50 side by side; a path that does not add up is flagged as it is typed
    _add_step(page, "steps", "Random split")
    total = page.locator('[data-split-total="steps[0]"]')
    expect(total).to_have_text("Together: 100 %")
    _field(page, "steps[0].split[0]", "percent").fill("60")
    expect(total).to_contain_text("must add up to 100")
    _field(page, "steps[0].split[0]", "percent").fill("50")
    expect(total).to_have_text("Together: 100 %")
    arms = page.locator('[data-path="steps[0]"] > .card-body > .journey-branches > .journey-arm')
    expect(arms).to_have_count(2)
    first_box, second_box = arms.nth(0).bounding_box(), arms.nth(1).bounding_box()
    assert second_box["x"] > first_box["x"] + first_box["width"] - 1  # side by side, not stacked

    # path 1: the birthday e-mail; path 2: wait for an order for 7 days, else a call request
    _add_step(page, "steps[0].split[0].steps", "Send an e-mail")
    _field(page, "steps[0].split[0].steps[0]", "template").select_option(label="Birthday wishes")
    _add_step(page, "steps[0].split[1].steps", "Wait for an event")
    wait = "steps[0].split[1].steps[0]"
    _field(page, wait, "until-event").select_option(label="orders")
    _field(page, wait, "timeout-days").fill("7")
    _add_step(page, f"{wait}.then", "Add to a tag")
    _add_step(page, f"{wait}.timeout", "Create a request")
    # the wait's two paths stand side by side too, even inside a split's path
    paths = page.locator(f'[data-path="{wait}"] > .card-body > .journey-branches > .journey-arm')
    expect(paths).to_have_count(2)
    arrived, timed_out = paths.nth(0).bounding_box(), paths.nth(1).bounding_box()
    assert timed_out["x"] >= arrived["x"] + arrived["width"] - 1 and abs(timed_out["y"] - arrived["y"]) < 2
    _field(page, f"{wait}.timeout[0]", "title").fill("Call about the birthday")
    _field(page, f"{wait}.timeout[0]", "urgency").select_option(label="Urgent")
    page.click("#save-journey")

    expect(page.locator(".alert-success")).to_contain_text("Saved as version 2")
    version = services.latest_version(journey)
    assert version.trigger == {"kind": "date", "attribute": "birth_date", "days_before": 3, "at": "09:00"}
    assert version.entry == {} and version.goal is None
    assert version.steps == [
        {
            "split": [
                {"percent": 50, "steps": [{"action": "email", "template": thanks.pk}]},
                {
                    "percent": 50,
                    "steps": [
                        {
                            "wait": {"until_event": "order", "timeout_days": 7},
                            "then": [{"action": "tag_add", "tag": "vip"}],
                            "timeout": [
                                {
                                    "action": "ticket",
                                    "title": "Call about the birthday",
                                    "type": "data_support",
                                    "urgency": "urgent",
                                }
                            ],
                        }
                    ],
                },
            ]
        }
    ]
    # the saved journey opens as it was built
    expect(_field(page, "trigger", "offset-days")).to_have_value("3")
    expect(page.locator(f'[data-path="{wait}.timeout[0]"] [data-field=title]')).to_have_value(
        "Call about the birthday"
    )


def test_event_trigger_entry_rules_and_the_other_actions_are_built_without_json(
    page, make_user, support_team
):
    mia = in_english(make_user("mia", role="requester", team="E-commerce ops"))
    make_user("amy", role="agent", team=support_team.name)
    f.manual_tag("vip")
    hook = f.webhook(
        make_user("ops", role="agent", team=support_team.name), "http://127.0.0.1:9/x", name="SMS"
    )
    journey = _draft(mia, name="Big orders", campaign=campaign_make(owner=mia, channels=["wechat", "sms"]))
    browser_login(page, "mia", "pw-mia-123")
    page.goto(f"/journeys/{journey.pk}/")

    # an order of at least 500 from the app
    _field(page, "trigger", "trigger-kind").select_option(label="does something (an event)")
    _field(page, "trigger", "trigger-event").select_option(label="orders")
    _field(page, "trigger", "amount-condition").check()
    _field(page, "trigger", "amount-op").select_option(">=")
    _field(page, "trigger", "amount-value").fill("500")
    _field(page, "trigger", "property-condition").check()
    _field(page, "trigger", "property-key").fill("channel")
    _field(page, "trigger", "property-value").fill("app")

    # entry: again after 30 days, half of them, a 10 % holdout, only who ordered in the last 30 days
    _field(page, "entry", "reentry").select_option("after_days")
    _field(page, "entry", "reentry_days").fill("30")
    _field(page, "entry", "percent").fill("50")
    _field(page, "entry", "holdout_percent").fill("10")
    page.get_by_label("Only customers who match a condition").check()
    expect(page.locator('[data-path="entry"] #rule-builder .rule-condition')).to_have_count(1)

    # steps: wait until a moment, notify a person, a touchpoint, a webhook with a payload field, exit
    _add_step(page, "steps", "Wait until a date and time")
    _field(page, "steps[0]", "until").fill("2027-03-01T10:30")
    _add_step(page, "steps", "Notify a team or a person")
    _field(page, "steps[1]", "notify-who").select_option(label="a person")
    _field(page, "steps[1]", "user").select_option("amy")
    _field(page, "steps[1]", "message").fill("A big app order")
    _add_step(page, "steps", "Campaign touchpoint")
    _field(page, "steps[2]", "channel").fill("sms")
    _add_step(page, "steps", "Call a webhook")
    _field(page, "steps[3]", "destination").select_option(label="SMS")
    page.locator('[data-path="steps[3]"] [data-action=add-payload]').click()
    _field(page, "steps[3]", "payload-key").fill("who")
    _field(page, "steps[3]", "payload-value").fill("{{customer.external_id}}")
    _add_step(page, "steps", "Exit")
    page.click("#save-journey")

    expect(page.locator(".alert-success")).to_contain_text("Saved as version 2")
    version = services.latest_version(journey)
    assert version.trigger == {
        "kind": "event",
        "event": "order",
        "condition": {"amount": {"op": ">=", "value": 500}, "properties": {"channel": "app"}},
    }
    assert version.entry == {
        "reentry": "after_days",
        "reentry_days": 30,
        "percent": 50,
        "holdout_percent": 10,
        "condition": {"all": [{"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1}]},
    }
    assert version.steps == [
        {"wait": {"until": "2027-03-01T10:30"}},
        {"action": "notify", "user": "amy", "message": "A big app order"},
        {"action": "touchpoint", "channel": "sms"},
        {"action": "webhook", "destination": hook.pk, "template": {"who": "{{customer.external_id}}"}},
        {"exit": True},
    ]

    # then a weekly schedule over the tag's members, Wednesdays at 08:15
    _field(page, "trigger", "trigger-kind").select_option(label="is in a tag at a scheduled time")
    _field(page, "trigger", "repeat").select_option(label="every week")
    _field(page, "trigger", "weekday").select_option(label="Wednesday")
    _field(page, "trigger", "at").fill("08:15")
    page.click("#save-journey")
    expect(page.locator(".alert-success")).to_contain_text("Saved as version 3")
    assert services.latest_version(journey).trigger == {
        "kind": "schedule",
        "tag": "vip",
        "every": "week",
        "weekday": 3,
        "at": "08:15",
    }


def test_a_split_that_does_not_add_up_is_refused_naming_its_step_and_keeps_the_input(page, make_user):
    mia = in_english(make_user("mia", role="requester", team="E-commerce ops"))
    f.manual_tag("vip")
    journey = _draft(mia)
    browser_login(page, "mia", "pw-mia-123")
    page.goto(f"/journeys/{journey.pk}/")

    _add_step(page, "steps", "Wait")
    _add_step(page, "steps", "Random split")
    page.locator('[data-path="steps[1]"] [data-action=add-path]').click()
    expect(page.locator('[data-path="steps[1]"] [data-field=percent]')).to_have_count(3)
    _field(page, "steps[1].split[2]", "percent").fill("10")
    page.click("#save-journey")

    expect(page.locator("#journey-error-list")).to_contain_text(
        "Step 2 › Random split: the arms' percents must add up to 100 (they add up to 77)"
    )
    expect(
        page.locator('[data-path="steps[1]"] > .card-body > .journey-errors .journey-error')
    ).to_contain_text("must add up to 100")
    expect(_field(page, "steps[1].split[2]", "percent")).to_have_value("10")
    expect(page.locator('[data-path="steps[0]"] [data-field=days]')).to_have_value("1")
    assert services.latest_version(journey).number == 1


def test_step_counts_refresh_without_a_reload(page, make_user, manager):
    mia = in_english(make_user("mia", role="requester", team="E-commerce ops"))
    vip = f.manual_tag("vip")
    journey = f.journey(
        mia,
        tag=vip,
        steps=[{"split": [{"percent": 100, "steps": [{"exit": True}]}, {"percent": 0, "steps": []}]}],
        activate_as=manager,
    )
    browser_login(page, "mia", "pw-mia-123")
    page.goto(f"/journeys/{journey.pk}/")
    passed = page.locator('[data-step="0.split0.0"] [data-outcome=passed]')
    expect(passed).to_have_text("0")

    f.enter(vip, f.customers(3))
    f.admit()
    engine.run_due()

    # the counts panel refreshes every 10 s and brings the step counts into the flow
    expect(passed).to_have_text("3", timeout=25_000)
    expect(page.locator('[data-step="0"] [data-outcome=passed]')).to_have_text("3")


def test_steps_move_up_and_down_within_their_list_keeping_their_ids(page, make_user):
    mia = in_english(make_user("mia", role="requester", team="E-commerce ops"))
    f.manual_tag("vip")
    ordered = {"all": [{"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1}]}
    journey = _draft(
        mia,
        steps=[
            {"wait": {"days": 1}},
            {"branch": {"if": ordered, "then": [{"wait": {"days": 2}}, {"action": "tag_add", "tag": "vip"}]}},
        ],
    )
    browser_login(page, "mia", "pw-mia-123")
    page.goto(f"/journeys/{journey.pk}/")
    first_then = '[data-path="steps[1].branch.then[0]"]'
    expect(page.locator(f"{first_then} [data-action=move-up]")).to_be_disabled()

    # the tag step moves up inside the branch's "then" path, then the first wait moves below the branch
    page.locator('[data-path="steps[1].branch.then[1]"] [data-action=move-up]').first.click()
    expect(page.locator(first_then)).to_have_attribute("data-kind", "tag_add")
    page.locator('[data-path="steps[0]"] [data-action=move-down]').first.click()
    expect(page.locator('[data-path="steps[0]"]')).to_have_attribute("data-kind", "branch")
    expect(page.locator('[data-path="steps[1]"] [data-action=move-down]')).to_be_disabled()
    # each step keeps its id, so its counts box stays its own
    expect(page.locator('[data-path="steps[0].branch.then[0]"]')).to_have_attribute(
        "data-step-id", "1.then.1"
    )
    expect(page.locator('[data-path="steps[1]"] .journey-counts')).to_have_attribute("data-step", "0")
    page.click("#save-journey")
    expect(page.locator(".alert-success")).to_contain_text("Saved as version 2")

    assert services.latest_version(journey).steps == [
        {
            "id": "1",
            "branch": {
                "if": ordered,
                "then": [
                    {"id": "1.then.1", "action": "tag_add", "tag": "vip"},
                    {"id": "1.then.0", "wait": {"days": 2}},
                ],
                "else": [],
            },
        },
        {"id": "0", "wait": {"days": 1}},
    ]
