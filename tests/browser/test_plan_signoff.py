"""Cross-department plan sign-off in Chromium (issue 21): an agent submits a plan that needs a manager's and
the data team's sign-off; both approve from their sign-off pages and the request moves on to in progress."""

import pytest
from playwright.sync_api import expect

from accounts.models import Team
from tests.conftest import browser_login, in_english
from tests.tickets.factories import force_status, make_ticket
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_tab(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(15_000)
    return context, context.new_page()


def sign(browser, live_server, username: str, key: str):
    """Log in, find the plan among those waiting for me, approve it; returns the open context and page."""
    context, tab = open_tab(browser, live_server)
    browser_login(tab, username, f"pw-{username}-123")
    tab.goto("/requests/plans/waiting/")
    tab.locator("#plans-waiting").get_by_role("link", name=key).click()
    expect(tab.locator("#signoff-form")).to_be_visible()
    tab.locator("#signoff-form").get_by_label("Approve").check()
    tab.click("#signoff-submit")
    expect(tab.locator(".alert-success")).to_contain_text("Your sign-off is recorded.")
    return context, tab


def test_a_plan_needing_two_signoffs_is_approved_by_both_and_the_request_moves_on(
    page, browser, live_server, make_user, support_team
):
    requester = in_english(make_user("rosa", role="requester", team="E-commerce ops"))
    in_english(make_user("andy", role="agent", team=support_team.name))
    in_english(make_user("mona", role="manager", team=support_team.name))
    in_english(make_user("dora", role="requester", team="Data"))
    data_team = Team.objects.get(name="Data")
    ticket = force_status(
        make_ticket(requester, type="feature", title="Coupon widget"), Ticket.Status.ANALYSIS
    )

    # The agent writes the plan, names the manager and the data team as sign-offs and submits it.
    browser_login(page, "andy", "pw-andy-123")
    page.goto(f"/requests/{ticket.key}/")
    page.click("#tab-plan-btn")
    form = page.locator("#plan-form")
    form.locator("textarea[name=implementation_path]").fill("Build the widget behind a flag.")
    form.locator("input[name=milestone_confirm]").fill("2026-12-01")
    form.locator("input[name=milestone_go_live]").fill("2026-12-20")
    form.locator("input[name=signoffs][value='role:manager']").check()
    form.locator(f"input[name=signoffs][value='team:{data_team.pk}']").check()
    form.locator("input[name=submit]").check()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/plan/")) as sent:
        form.locator("button[type=submit]").click()
    assert sent.value.status == 200
    expect(page.locator("#plan-status")).to_have_text("Submitted for approval")
    expect(page.locator("#signoff-list [data-decision=pending]")).to_have_count(2)

    # The manager approves: one of two, the request stays in analysis.
    context, tab = sign(browser, live_server, "mona", ticket.key)
    expect(tab.locator("#plan-status")).to_have_text("Submitted for approval")
    expect(tab.locator("#plan-ticket-status")).to_have_text("Analysis")
    context.close()

    # The data team's analyst (who cannot otherwise see the request) approves: the request moves on.
    context, tab = sign(browser, live_server, "dora", ticket.key)
    expect(tab.locator("#plan-status")).to_have_text("Approved")
    expect(tab.locator("#plan-ticket-status")).to_have_text("In progress")
    expect(tab.locator("#signoff-list [data-decision=approved]")).to_have_count(2)
    context.close()

    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_PROGRESS
