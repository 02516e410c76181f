"""Charts speak the page's language (issue 18, item 10): on a Chinese page plotly's date axis names the
months in Chinese and its toolbar's tooltips are Chinese."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login
from tests.tickets.factories import make_ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ENGLISH_MONTHS = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)", re.I)
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_a_chinese_dashboard_names_months_and_toolbar_buttons_in_chinese(page, make_user, support_team):
    # given a manager reading Chinese (the default) and a request opened today, so the support dashboard
    # draws its opened-and-closed chart over a date axis
    make_user("boss", role="manager", team=support_team.name)
    make_ticket(make_user("rita", role="requester", team="E-commerce ops"))
    browser_login(page, "boss", "pw-boss-123")
    # when they open the support dashboard
    page.goto("/dashboards/support/")
    chart = page.locator("#chart-inflow_outflow")
    expect(chart.locator(".xtick text").first).to_be_attached(timeout=20_000)
    # then the date axis names the months in Chinese
    ticks = chart.locator(".xtick text").all_text_contents()
    assert ticks and any("月" in tick for tick in ticks), ticks
    assert not [tick for tick in ticks if ENGLISH_MONTHS.search(tick)], ticks
    # and the toolbar's tooltips are Chinese
    titles = [b.get_attribute("data-title") or "" for b in chart.locator(".modebar-btn").all()]
    assert titles and all(HAN.search(title) for title in titles), titles
