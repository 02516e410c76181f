"""Playwright: a metrics file with more clicks than impressions is shown for confirmation (cancelling
imports nothing, confirming imports the file as it is); the attribution tab switches to time decay."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Conversion, DailyMetric, Touchpoint
from tests.campaigns.factories import campaign_make
from tests.conftest import browser_login, in_english

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_metrics_import_warning_is_confirmed_before_import(page, requester, tmp_path):
    # given a campaign of the requester's team and a file whose second row has 150 clicks on 100 impressions
    campaign = campaign_make(owner=requester, code="confirm-me", name="Confirm me")
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "date,channel,spend,impressions,clicks,leads,conversions,revenue\n"
        f"{yesterday},wechat,300,10000,200,40,10,900\n"
        f"{yesterday},douyin,50,100,150,2,1,80\n",
        encoding="utf-8",
    )
    in_english(requester)
    browser_login(page, "req", "pw-req-123")

    # when the file is imported on the figures tab
    page.goto(f"/campaigns/{campaign.code}/?tab=figures")
    page.set_input_files("#metrics-import-form input[type=file]", str(csv))
    page.click("#metrics-import-form button[type=submit]")

    # then the warning is listed with its row and column, and nothing is imported yet
    expect(page.locator("#import-warnings-summary")).to_contain_text("1 row looks wrong")
    row = page.locator("#import-warnings tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(0)).to_have_text("3")
    expect(row.locator("td").nth(1)).to_have_text("clicks")
    expect(row.locator("td").nth(2)).to_have_text("More clicks (150) than impressions (100).")
    assert DailyMetric.objects.count() == 0

    # when the person cancels, they are back on the figures tab with nothing imported
    page.click("#import-cancel")
    expect(page.locator("#metrics-import-form")).to_be_visible()
    assert DailyMetric.objects.count() == 0

    # when they import the file again and confirm it
    page.set_input_files("#metrics-import-form input[type=file]", str(csv))
    page.click("#metrics-import-form button[type=submit]")
    page.click("#import-confirm")

    # then both rows are imported and the figures show them
    expect(page.locator('[data-kpi="spend"]')).to_have_text("350.00")
    assert DailyMetric.objects.filter(campaign=campaign).count() == 2


def test_attribution_tab_switches_to_time_decay(page, requester):
    # given a conversion of 100.00 touched by wechat 14 days and email 0 days before it
    campaign = campaign_make(owner=requester, code="decay-me", name="Decay me")
    bought = timezone.now() - dt.timedelta(days=1)
    for days, channel in ((14, "wechat"), (0, "email")):
        Touchpoint.objects.create(
            campaign=campaign,
            customer_external_id="c1",
            occurred_at=bought - dt.timedelta(days=days),
            channel=channel,
        )
    Conversion.objects.create(
        campaign=campaign, customer_external_id="c1", occurred_at=bought, revenue=Decimal("100")
    )
    in_english(requester)
    browser_login(page, "req", "pw-req-123")
    page.goto(f"/campaigns/{campaign.code}/?tab=attribution")

    # when time decay with a 14-day half-life is chosen
    page.select_option("#id_model", "time_decay")
    page.fill("#id_half_life_days", "14")
    page.click("#attribution-tab button[type=submit]")

    # then the older touch counts half as much (1/3 and 2/3) and the channels add up to the total
    expect(page.locator("#attribution-model-note")).to_contain_text("halves for every 14 days")
    email = page.locator("#attribution-table tbody tr", has_text="email")
    expect(email.locator("td").nth(2)).to_have_text("66.67")
    wechat = page.locator("#attribution-table tbody tr", has_text="wechat")
    expect(wechat.locator("td").nth(2)).to_have_text("33.33")
    expect(page.locator("#attribution-total td").nth(2)).to_have_text("100.00")
