"""Request types in Chromium: a manager defines one with fields; a requester files one through the
new-request page, the fields appearing when the type is chosen; the ticket page shows the values."""

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login, in_english
from tickets.models import RequestType, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_tab(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(15_000)
    return context, context.new_page()


def test_manager_defines_a_request_type_and_a_requester_files_one(
    page, browser, live_server, make_user, support_team
):
    requester = in_english(make_user("rosa", role="requester", team="E-commerce ops"))
    in_english(make_user("mona", role="manager", team=support_team.name))

    # The manager opens the requester team's routing page and creates "Coupon setup".
    browser_login(page, "mona", "pw-mona-123")
    page.goto("/requests/routing/")
    page.locator("#teams-table tr", has_text="E-commerce ops").get_by_role("link").click()
    form = page.locator("#request-type-create-form")
    form.locator("input[name=name]").fill("Coupon setup")
    form.locator("select[name=default_type]").select_option("system_config")
    form.locator("select[name=default_urgency]").select_option("urgent")
    form.locator("button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("Coupon setup")

    # … with a required text field and a choice field.
    add = page.locator("#field-add-form")
    add.locator("input[name=name]").fill("sku")
    add.locator("input[name=label]").fill("Coupon SKU")
    add.locator("select[name=kind]").select_option("text")
    add.locator("input[name=required]").check()
    add.locator("#field-add").click()
    expect(page.locator("#fields-table tr[data-field=sku]")).to_be_visible()
    add = page.locator("#field-add-form")
    add.locator("input[name=name]").fill("channel")
    add.locator("input[name=label]").fill("Sales channel")
    add.locator("select[name=kind]").select_option("choice")
    add.locator("input[name=choices]").fill("app, mini-program")
    add.locator("#field-add").click()
    expect(page.locator("#fields-table tr[data-field=channel]")).to_be_visible()
    coupon = RequestType.objects.get(name="Coupon setup")
    assert coupon.team_id == requester.team_id

    # The requester chooses the type on the new-request page: its fields appear (htmx), no JSON to type.
    requester_context, req_page = open_tab(browser, live_server)
    browser_login(req_page, "rosa", "pw-rosa-123")
    req_page.goto("/requests/new/")
    expect(req_page.locator("input[name=cf_sku]")).to_have_count(0)
    req_page.locator("select[name=request_type]").select_option(label="Coupon setup")
    expect(req_page.locator("input[name=cf_sku]")).to_be_visible()
    expect(req_page.locator("#request-type-defaults")).to_contain_text("Urgent")

    # Filing without the required field shows the error under it and files nothing.
    req_page.fill("input[name=title]", "Coupon for 11.11")
    req_page.click("#submit-request")
    expect(req_page.locator("[data-error-for=cf_sku]")).to_be_visible()
    assert not Ticket.objects.exists()

    # Filled in, it files; the ticket page shows the values.
    req_page.fill("input[name=cf_sku]", "D11-30OFF")
    req_page.locator("select[name=cf_channel]").select_option("mini-program")
    req_page.click("#submit-request")
    expect(req_page.locator("#ticket-key")).to_be_visible()
    card = req_page.locator("#request-type-values")
    expect(card).to_contain_text("Coupon setup")
    expect(card.locator("[data-field=sku]")).to_have_text("D11-30OFF")
    expect(card.locator("[data-field=channel]")).to_have_text("mini-program")
    ticket = Ticket.objects.get()
    assert ticket.custom_fields == {"sku": "D11-30OFF", "channel": "mini-program"}
    assert (ticket.type, ticket.urgency) == ("system_config", "urgent")
    requester_context.close()
