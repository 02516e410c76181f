"""The request journey in Chromium: file with an attachment → triage and deliver → accept and rate → manager."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login, in_english

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 128


def open_tab(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(15_000)
    return context, context.new_page()


def test_request_journey(page, browser, live_server, make_user, support_team):
    requester = in_english(make_user("rosa", role="requester", team="E-commerce ops"))
    in_english(make_user("andy", role="agent", team=support_team.name))
    in_english(make_user("mona", role="manager", team=support_team.name))

    # A requester files a request with an attachment.
    browser_login(page, "rosa", "pw-rosa-123")
    page.goto("/requests/new/")
    page.get_by_label("Incident").check()
    page.get_by_label("Urgent").check()
    page.fill("input[name=title]", "Checkout button does nothing")
    page.fill("textarea[name=description]", "Since **10:00** the button is dead.")
    page.set_input_files(
        "input[name=attachments]", files=[{"name": "screen.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.click("#submit-request")
    expect(page.locator("#ticket-status")).to_have_text("New")
    key = page.locator("#ticket-key").inner_text()
    assert key.startswith("MT-")
    expect(page.locator("#ticket-files")).to_contain_text("screen.png")
    expect(page.locator("#ticket-description strong")).to_have_text("10:00")

    # An agent triages, assigns and moves it through to awaiting acceptance.
    agent_context, agent_page = open_tab(browser, live_server)
    browser_login(agent_page, "andy", "pw-andy-123")
    agent_page.goto("/requests/queue/")
    expect(agent_page.locator(f"tr[data-key='{key}']")).to_be_visible()
    agent_page.click(f"tr[data-key='{key}'] a")
    agent_page.click("[data-step=triaged]")
    # the step's form is a collapse: act on it once it has opened (not while it is still animating)
    expect(agent_page.locator("#step-triaged")).to_have_class(re.compile(r"(^|\s)show(\s|$)"))
    form = agent_page.locator("[data-step-form=triaged]")
    form.locator("select[name=feasibility]").select_option("feasible")
    form.locator("select[name=assignee]").select_option("andy")
    with agent_page.expect_response(lambda r: r.request.method == "POST" and "/transition" in r.url) as sent:
        form.locator("button[type=submit]").click()
    assert sent.value.status == 200
    expect(agent_page.locator("#ticket-status")).to_have_text("Triaged")
    expect(agent_page.locator("#ticket-assignee")).to_have_text("andy")
    for step, label in [
        ("in_progress", "In progress"),
        ("testing", "Testing"),
        ("awaiting_acceptance", "Awaiting acceptance"),
    ]:
        agent_page.click(f"button[data-step={step}]")
        expect(agent_page.locator("#ticket-status")).to_have_text(label)
    agent_page.fill("textarea[name=body]", "Fixed the click handler, please check.")
    agent_page.click("#comment-submit")
    expect(agent_page.locator("#comments")).to_contain_text("Fixed the click handler")
    agent_context.close()

    # The requester accepts and rates it.
    page.goto(f"/requests/{key}/")
    expect(page.locator("#ticket-status")).to_have_text("Awaiting acceptance")
    expect(page.locator("#comments")).to_contain_text("Fixed the click handler")
    page.click("button[data-step=resolved]")
    expect(page.locator("#ticket-status")).to_have_text("Resolved")
    page.locator("#rating-card").get_by_label("5").check()
    page.fill("#rating-card textarea[name=comment]", "Quick fix, thanks")
    page.click("#rate-submit")
    expect(page.locator("#rating-shown")).to_contain_text("5/5")
    expect(page.locator("#ticket-status")).to_have_text("Closed")
    assert requester.requested_tickets.get().rating.score == 5

    # The manager sees it resolved (and, after the rating, closed) with its history.
    manager_context, manager_page = open_tab(browser, live_server)
    browser_login(manager_page, "mona", "pw-mona-123")
    manager_page.goto("/requests/queue/?status=done")
    row = manager_page.locator(f"tr[data-key='{key}']")
    expect(row).to_contain_text("Closed")
    manager_page.goto(f"/requests/{key}/")
    manager_page.click("#tab-history-btn")
    history = manager_page.locator("#history")
    expect(history).to_contain_text("Awaiting acceptance → Resolved")
    expect(history).to_contain_text("Resolved → Closed")
    expect(manager_page.locator("#rating-shown")).to_contain_text("5/5")
    manager_context.close()


def test_a_stale_triage_shows_the_conflict_in_place(page, make_user, support_team):
    from tests.tickets.factories import make_ticket
    from tickets.services import ticket_update_triage

    # given an agent on a ticket's page, and another agent who triages the ticket as urgent meanwhile
    requester = make_user("rosa", role="requester", team="E-commerce ops")
    in_english(make_user("andy", role="agent", team=support_team.name))
    other = make_user("olga", role="agent", team=support_team.name)
    ticket = make_ticket(requester)
    browser_login(page, "andy", "pw-andy-123")
    page.goto(f"/requests/{ticket.key}/")
    ticket_update_triage(ticket=ticket, by=other, urgency="urgent")
    # when the agent saves "planned" from the page they opened (htmx)
    page.select_option("#triage-form select[name=urgency]", "planned")
    page.click("#triage-form button[type=submit]")
    # then the 409 is swapped in: the message, the other agent's value, and "planned" listed as not saved
    expect(page.locator("#triage-conflict")).to_contain_text("Someone else changed this")
    expect(page.locator("#triage-conflict")).to_contain_text("Planned")
    expect(page.locator("#triage-form select[name=urgency]")).to_have_value("urgent")
    ticket.refresh_from_db()
    assert ticket.urgency == "urgent"


def test_a_view_saved_after_filtering_the_queue_reopens_the_filter(page, make_user, support_team):
    # issue 18, item 1: the view stored an empty query (its hidden field kept the page's first filters)
    from tests.tickets.factories import make_ticket
    from tickets.models import SavedView

    requester = make_user("rosa", role="requester", team="E-commerce ops")
    make_ticket(requester, title="Urgent outage", urgency="urgent")
    make_ticket(requester, title="Routine change", urgency="routine")
    in_english(make_user("vic", role="agent", team=support_team.name))
    browser_login(page, "vic", "pw-vic-123")
    page.goto("/requests/queue/")
    # when the agent filters by urgency (htmx swaps the results, the page does not reload)
    page.select_option("#f-urgency", "urgent")
    expect(page.locator("#queue-results")).not_to_contain_text("Routine change")
    # and saves the view
    page.click("#saved-views")
    page.fill("#saved-view-name", "Urgent only")
    page.press("#saved-view-name", "Enter")
    page.wait_for_load_state("networkidle")
    # then the view holds the filter, and opening it shows only the urgent request
    assert "urgency=urgent" in SavedView.objects.get(name="Urgent only").query
    page.goto("/requests/queue/")
    page.click("#saved-views")
    page.click("[data-saved-view='Urgent only']")
    expect(page.locator("#queue-results")).to_contain_text("Urgent outage")
    expect(page.locator("#queue-results")).not_to_contain_text("Routine change")
