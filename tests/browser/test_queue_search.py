"""The queue in Chromium: sort by a header, change the page size, export the CSV; the top bar's search
jumps to a request by its key."""

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login, in_english
from tests.tickets.factories import make_ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sort_page_size_export_and_jump_to_a_key(page, make_user, support_team):
    requester = make_user("rosa", role="requester", team="E-commerce ops")
    in_english(make_user("andy", role="agent", team=support_team.name))
    tickets = [make_ticket(requester, title=f"Request {n:02d}") for n in range(30)]
    browser_login(page, "andy", "pw-andy-123")
    page.goto("/requests/queue/")
    expect(page.locator("#queue-table tbody tr")).to_have_count(30)

    # When the agent clicks the Title header, the rows sort by title, shown with an arrow and aria-sort
    page.click("a[data-sort=title]")
    title_header = page.locator("th", has=page.locator("a[data-sort=title]"))
    expect(title_header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#queue-table tbody tr").first).to_have_attribute("data-key", tickets[0].key)
    expect(page).to_have_url(re.compile(r"sort=title"))
    # and a second click reverses it
    page.click("a[data-sort=title]")
    expect(title_header).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#queue-table tbody tr").first).to_have_attribute("data-key", tickets[-1].key)

    # When they choose 25 rows a page, the order is kept and the URL says both
    page.select_option("#f-per-page", "25")
    expect(page.locator("#queue-table tbody tr")).to_have_count(25)
    expect(page).to_have_url(re.compile(r"sort=-title"))
    expect(page).to_have_url(re.compile(r"per_page=25"))
    expect(page.locator("#queue-table tbody tr").first).to_have_attribute("data-key", tickets[-1].key)

    # When they export, the file holds every matching row in that order
    with page.expect_download() as download:
        page.click("#queue-export")
    text = open(download.value.path(), encoding="utf-8-sig").read()
    keys = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert keys == [t.key for t in reversed(tickets)]

    # When they type a key (lower case, no dash) in the top bar's search, the request opens
    number = tickets[7].key.split("-")[1]
    page.fill("#global-search", f"mt{number}")
    page.press("#global-search", "Enter")
    expect(page.locator("#ticket-key")).to_have_text(tickets[7].key)
