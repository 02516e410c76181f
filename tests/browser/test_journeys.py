"""Playwright: a marketer builds "entered VIP → wait 1 day → if ordered in the last 30 days: e-mail thanks,
else: webhook to the coupon service" without typing JSON, activates it at 10 %, is refused above that, a
manager raises it to 100 %, and the page's counts move as the engine runs (issue 20)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from journeys import admission, engine, services
from journeys.models import Journey
from tests.conftest import browser_login, in_english
from tests.crm_tags import factories as crm
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


def test_marketer_builds_activates_and_a_manager_raises_while_counts_move(page, make_user, support_team):
    in_english(make_user("mia", role="requester", team="E-commerce ops"))
    in_english(make_user("max", role="manager", team=support_team.name))
    agent = make_user("amy", role="agent", team=support_team.name)
    vip = f.manual_tag("vip")
    services.email_template_create(
        by=None, name="Thank you", texts={"en": {"subject": "Thanks", "body": "Hi"}}
    )
    f.webhook(agent, "http://127.0.0.1:9/coupons", name="Coupon service")

    # the marketer creates a draft on the list page and builds its steps from dropdowns
    browser_login(page, "mia", "pw-mia-123")
    page.locator('#main-nav [data-nav="journeys"]').click()
    expect(page.locator(".empty-state")).to_contain_text("No journeys yet")
    page.click("#new-journey-button")
    page.get_by_label("Name").fill("VIP thank-you")
    page.get_by_label("Starts when a customer").select_option("tag_entered")
    page.locator("#id_tag").select_option("vip")
    page.click("#create-journey")
    expect(page.locator("#journey-name")).to_have_text("VIP thank-you")

    _add_step(page, "steps", "Wait")
    expect(page.locator('[data-path="steps[0]"] [data-field=days]')).to_have_value("1")
    _add_step(page, "steps", "If / else")
    branch = page.locator('[data-path="steps[1]"]')
    branch.locator("[data-action=edit-condition]").click()
    # the condition is the tag rule builder's, in words: orders in the last 30 days, at least 1
    condition = branch.locator("#rule-builder .rule-condition")
    expect(condition).to_have_count(1)
    expect(condition.locator("select[data-field=event] option:checked")).to_have_text("orders")
    expect(condition.get_by_label("in the last")).to_have_value("30")
    _add_step(page, "steps[1].branch.then", "Send an e-mail")
    page.locator('[data-path="steps[1].branch.then[0]"] [data-field=template]').select_option(
        label="Thank you"
    )
    _add_step(page, "steps[1].branch.else", "Call a webhook")
    page.locator('[data-path="steps[1].branch.else[0]"] [data-field=destination]').select_option(
        label="Coupon service"
    )
    page.click("#save-journey")
    expect(page.locator(".alert-success")).to_contain_text("Saved as version 2")
    journey = Journey.objects.get(name="VIP thank-you")
    steps = services.latest_version(journey).steps
    assert steps[0] == {"wait": {"days": 1}}
    assert steps[1]["branch"]["if"] == {
        "all": [{"event": "order", "agg": "count", "window_days": 30, "op": ">=", "value": 1}]
    }
    assert steps[1]["branch"]["then"][0]["action"] == "email"
    assert steps[1]["branch"]["else"][0]["action"] == "webhook"

    # a gray release at 10 %; more is refused with the reason
    page.get_by_label("Share of customers, in percent").fill("10")
    page.click("#activate-button")
    expect(page.locator("#journey-percent")).to_have_text("10 % of customers")
    page.get_by_label("Share of customers, in percent").fill("50")
    page.click("#activate-button")
    expect(page.locator(".alert-danger[role=alert]")).to_contain_text(
        "Only a manager may activate a journey for more than 10 %"
    )

    # a manager raises it to 100 %
    page.click("#user-menu")
    page.click("#logout-button")
    browser_login(page, "max", "pw-max-123")
    page.goto(f"/journeys/{journey.pk}/")
    page.get_by_label("Share of customers, in percent").fill("100")
    page.click("#activate-button")
    expect(page.locator("#journey-percent")).to_have_text("100 % of customers")
    expect(page.locator("#stat-entered")).to_have_text("0")

    # customers enter VIP (two ordered recently), the engine admits them and, a day later, runs the branch
    people = f.customers(5)
    recently = timezone.now() - timedelta(days=3)
    crm.events([(people[0], "order", recently, 100), (people[1], "order", recently, 80)])
    f.enter(vip, people)
    admission.admit_tag_triggers()
    engine.run_due()
    page.reload()
    expect(page.locator("#stat-entered")).to_have_text("5")
    engine.run_due(now=timezone.now() + timedelta(days=1, minutes=1))
    page.reload()
    expect(page.locator('[data-step="0"] [data-outcome=passed]')).to_have_text("5")
    expect(page.locator('[data-step="1"] [data-outcome=passed]')).to_have_text("5")
    # the two who ordered took the e-mail arm, the three others the webhook arm (acted or skipped by a guard)
    arms = {
        arm: sum(int(n) for n in page.locator(f'[data-step="1.{arm}.0"] strong').all_text_contents())
        for arm in ("then", "else")
    }
    assert arms == {"then": 2, "else": 3}


def test_a_refused_save_shows_the_error_beside_the_step_it_names(page, make_user):
    in_english(make_user("mia", role="requester", team="E-commerce ops"))
    f.manual_tag("vip")
    journey = services.journey_create(
        by=make_user("ned", role="requester", team="E-commerce ops"),
        name="No template yet",
        trigger={"kind": "tag_entered", "tag": "vip"},
        steps=[{"wait": {"days": 1}}],
    )
    browser_login(page, "mia", "pw-mia-123")
    page.goto(f"/journeys/{journey.pk}/")

    # given an e-mail step with no template to pick (none exists yet), when saved
    _add_step(page, "steps", "Send an e-mail")
    page.click("#save-journey")

    # then the page says it was not saved and the message sits in the e-mail step, not the wait
    expect(page.locator("#journey-errors-banner")).to_contain_text("The journey was not saved: 1 problem")
    expect(page.locator('[data-path="steps[1]"] .journey-error')).to_have_text(
        "template: must be the id of an e-mail template"
    )
    expect(page.locator('[data-path="steps[0]"] .journey-error')).to_have_count(0)
    assert services.latest_version(journey).number == 1


def test_a_draft_starts_on_a_birthday_from_the_new_journey_form(page, make_user):
    in_english(make_user("mia", role="requester", team="E-commerce ops"))
    f.manual_tag("vip")
    browser_login(page, "mia", "pw-mia-123")
    page.goto("/journeys/")
    page.click("#new-journey-button")
    form = page.locator("#new-journey-form")
    # only the chosen kind's fields show
    expect(form.locator("#new-journey-date")).to_be_hidden()
    form.get_by_label("Starts when a customer").select_option("date")
    expect(form.locator("#new-journey-date")).to_be_visible()
    expect(form.locator("#id_tag")).to_be_hidden()
    expect(form.locator("#new-journey-schedule")).to_be_hidden()
    form.locator("#id_name").fill("Birthday")
    form.locator("#id_date_offset").select_option("before")
    form.locator("#id_offset_days").fill("3")
    form.locator("#id_at").fill("09:30")
    page.click("#create-journey")
    expect(page.locator("#journey-name")).to_have_text("Birthday")
    trigger = services.latest_version(Journey.objects.get(name="Birthday")).trigger
    assert trigger == {"kind": "date", "attribute": "birth_date", "days_before": 3, "at": "09:30"}
