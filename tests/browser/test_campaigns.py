"""Playwright: a requester drafts a campaign with tasks and an audience; a manager approves it,
imports metrics, and the campaign page shows the figures and the charts."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm_tags.models import Tag, TagMembership
from tests.conftest import browser_login
from tests.crm_tags import factories as tag_factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_draft_approve_import_and_see_figures(page, requester, manager, tmp_path):
    # Given a tag with 3 customers
    vip = Tag.objects.create(slug="vip", name="VIP", kind=Tag.Kind.MANUAL)
    TagMembership.objects.bulk_create(
        TagMembership(tag=vip, customer=tag_factories.customer(external_id=f"B{i}"), since=timezone.now())
        for i in range(3)
    )
    today = timezone.localdate()

    # When the requester drafts a campaign with an audience
    browser_login(page, "req", "pw-req-123")
    page.goto("/campaigns/new/")
    page.fill("#id_name", "Browser promo")
    page.fill("#id_code", "browser-promo")
    page.fill("#id_budget", "1000")
    page.fill("#id_start_date", (today - dt.timedelta(days=3)).isoformat())
    page.fill("#id_end_date", (today + dt.timedelta(days=10)).isoformat())
    page.fill("#id_channels_text", "wechat, douyin")
    page.fill("#id_include_text", "vip")
    # Then the live audience size appears
    expect(page.locator("#audience-size [data-audience-size]")).to_have_attribute("data-audience-size", "3")
    page.click("#campaign-form button[type=submit]")
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", "planning")

    # And adds two tasks, one overdue
    page.fill("#task-form #id_title", "Write the brief")
    page.fill("#task-form #id_due_date", (today - dt.timedelta(days=1)).isoformat())
    page.click("#task-form button[type=submit]")
    expect(page.locator('tr[data-task="Write the brief"]')).to_have_class(re.compile(r"\btask-overdue\b"))
    page.fill("#task-form #id_title", "Book the KOLs")
    page.click("#task-form button[type=submit]")
    expect(page.locator("#task-table tbody tr")).to_have_count(2)
    # A requester has no approve button
    expect(page.locator("#approve-button")).to_have_count(0)

    # When a manager approves it
    page.context.clear_cookies()
    browser_login(page, "boss", "pw-boss-123")
    plotly_requests: list[str] = []
    page.on(
        "request",
        lambda request: plotly_requests.append(request.url) if "plotly.min.js" in request.url else None,
    )
    page.goto("/campaigns/browser-promo/")
    page.click("#approve-button")
    # Then it runs (it started three days ago)
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", "running")
    # and the plan tab, which draws no chart, did not fetch plotly.js (4.8 MB; issue 18, item 14)
    page.wait_for_load_state("networkidle")
    assert plotly_requests == []

    # When metrics are imported on the figures tab
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "date,channel,spend,impressions,clicks,leads,conversions,revenue\n"
        f"{(today - dt.timedelta(days=2)).isoformat()},wechat,300,10000,200,40,10,900\n"
        f"{(today - dt.timedelta(days=1)).isoformat()},wechat,200,8000,150,30,8,600\n"
        f"{(today - dt.timedelta(days=1)).isoformat()},douyin,300,20000,250,20,6,500\n",
        encoding="utf-8",
    )
    page.click('[data-tab="figures"]')
    page.set_input_files("#metrics-import-form input[type=file]", str(csv))
    page.click("#metrics-import-form button[type=submit]")

    # Then the figures and the charts show: spend 800, revenue 2,000, ROI 150 %, ROAS 2.50×
    expect(page.locator('[data-kpi="spend"]')).to_have_text("800.00")
    expect(page.locator('[data-kpi="revenue"]')).to_have_text("2,000.00")
    expect(page.locator('[data-kpi="roi"]')).to_have_text("150.0%")
    expect(page.locator('[data-kpi="roas"]')).to_have_text("2.50×")
    expect(page.locator("#chart-by-day .main-svg").first).to_be_visible()
    expect(page.locator("#chart-by-channel .main-svg").first).to_be_visible()
    expect(page.locator("#chart-funnel .main-svg").first).to_be_visible()
    assert plotly_requests, "the figures tab fetched plotly.js for its charts"
    # a campaign of a few days is drawn by day: no hour ticks on the time axis
    ticks = page.locator("#chart-by-day .xtick text").all_text_contents()
    assert ticks and not any(":" in tick for tick in ticks), ticks
    # And the budget burn bar reaches 80 % (warning colour)
    expect(page.locator("#budget-burn .progress-bar")).to_have_class("progress-bar bg-warning")
