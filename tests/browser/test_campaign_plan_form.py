"""Playwright: on the campaign form KPI targets are rows (metric, target), never JSON, and the audience is
picked from tags by name (issue 18, item 12)."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign
from crm_tags.models import Tag, TagMembership
from tests.conftest import browser_login, in_english
from tests.crm_tags import factories as tag_factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_kpi_targets_are_added_removed_and_checked_as_rows(page, requester):
    in_english(requester)
    today = timezone.localdate()
    browser_login(page, "req", "pw-req-123")
    page.goto("/campaigns/new/")
    page.fill("#id_name", "Rows promo")
    page.fill("#id_code", "rows-promo")
    page.fill("#id_budget", "1000")
    page.fill("#id_start_date", today.isoformat())
    page.fill("#id_end_date", (today + dt.timedelta(days=10)).isoformat())
    expect(page.locator("#kpi-targets textarea")).to_have_count(0)

    # given three rows, one removed again, one with a bad target
    rows = page.locator(".kpi-row")
    rows.nth(0).get_by_label("Metric").select_option(label="Conversions")
    rows.nth(0).get_by_label("Target").fill("500")
    page.get_by_role("button", name="Add a target").click()
    rows.nth(1).get_by_label("Metric").select_option(label="ROI")
    expect(rows.nth(1).locator("[data-unit-shown]")).to_have_text("%")
    rows.nth(1).get_by_label("Target").fill("abc")
    page.get_by_role("button", name="Add a target").click()
    rows.nth(2).get_by_label("Metric").select_option(label="Leads")
    rows.nth(2).get_by_role("button", name="Remove").click()
    expect(rows).to_have_count(2)

    # when saved, the bad value is named beside its row and nothing is saved
    page.click("#campaign-form button[type=submit]")
    expect(rows.nth(1).locator(".kpi-error")).to_have_text("Enter a number.")
    expect(rows.nth(0).locator(".kpi-error")).to_have_count(0)
    assert not Campaign.objects.filter(code="rows-promo").exists()

    # then, fixed, the targets are saved as numbers (ROI typed in percent, stored as a fraction)
    rows.nth(1).get_by_label("Target").fill("150")
    page.click("#campaign-form button[type=submit]")
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", "planning")
    assert Campaign.objects.get(code="rows-promo").kpi_targets == {"conversions": 500, "roi": 1.5}


def test_the_audience_is_picked_by_tag_name_with_search(page, requester):
    in_english(requester)
    vip = Tag.objects.create(slug="vip", name="Very important buyers", kind=Tag.Kind.MANUAL)
    Tag.objects.create(slug="churn-risk", name="Churn risk", kind=Tag.Kind.MANUAL)
    TagMembership.objects.bulk_create(
        TagMembership(tag=vip, customer=tag_factories.customer(external_id=f"A{i}"), since=timezone.now())
        for i in range(2)
    )
    browser_login(page, "req", "pw-req-123")
    page.goto("/campaigns/new/")

    include = page.locator(".audience-picker").first
    include.get_by_label("Find a tag").fill("important")
    expect(include.get_by_label("Churn risk")).to_be_hidden()
    include.get_by_label("Very important buyers").check()

    expect(page.locator("#id_include_text")).to_have_value("vip")
    expect(page.locator("#audience-size [data-audience-size]")).to_have_attribute("data-audience-size", "2")
