"""A manager uses the dashboards: charts render under the strict CSP, filters, drill-down, report download."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.analytics.factories import campaign_make, customer_make, metric_make, order_make, ticket_make
from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def data(make_user, support_team):
    boss = make_user("boss", role="manager", team=support_team.name)
    boss.language = "en"
    boss.save(update_fields=["language"])
    requester = make_user("rita", role="requester", team="E-commerce ops")
    now = timezone.now()
    for hours in (2, 30, 80):
        ticket_make(
            requester=requester,
            created_at=now - dt.timedelta(hours=hours),
            status="in_progress",
            title=f"Open for {hours} hours",
        )
    ticket_make(
        requester=requester, created_at=now - dt.timedelta(days=3), status="triaged", title="Triaged one"
    )
    campaign = campaign_make(
        owner=requester,
        code="double11",
        start_date=timezone.localdate() - dt.timedelta(days=5),
        end_date=timezone.localdate() + dt.timedelta(days=5),
    )
    metric_make(
        campaign=campaign,
        date=timezone.localdate() - dt.timedelta(days=1),
        channel="wechat",
        spend=Decimal("120"),
        impressions=1000,
        clicks=80,
        leads=10,
        conversions=4,
        revenue=Decimal("400"),
    )
    customer = customer_make("c-1", signup_at=now - dt.timedelta(days=2))
    order_make(customer, now - dt.timedelta(days=1))
    return boss


def _wait_for_charts(page):
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-chart]')].every(c => c.dataset.loaded)", timeout=20_000
    )


def _click_first_bar(page, chart_id):
    """Click the leftmost drawn bar with the real mouse (plotly listens on its own drag layer)."""
    bars = page.locator(f"#{chart_id} g.point path")
    expect(bars.first).to_be_attached()
    page.locator(f"#{chart_id} [data-plot]").scroll_into_view_if_needed()
    boxes = [box for box in (bar.bounding_box() for bar in bars.all()) if box and box["height"] > 1]
    box = min(boxes, key=lambda b: b["x"])
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def test_manager_uses_the_support_dashboard_and_drills_into_the_queue(page, data):
    csp_errors = []
    page.on(
        "console", lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    browser_login(page, "boss", "pw-boss-123")
    page.goto("/dashboards/support/")
    _wait_for_charts(page)
    # plotly drew SVG under the strict CSP, and every card says how fresh it is
    expect(page.locator("#chart-backlog .main-svg").first).to_be_visible()
    expect(page.locator("#chart-backlog [data-as-of]")).to_have_text(re.compile(r"as of \d\d:\d\d"))
    assert not [c for c in page.locator("[data-chart]").all() if c.get_attribute("data-loaded") == "error"]
    # change the date range: the URL keeps the filters
    today = timezone.localdate()
    page.fill("#id_from", (today - dt.timedelta(days=6)).isoformat())
    page.fill("#id_to", today.isoformat())
    page.click("#apply-filters")
    page.wait_for_url(re.compile(r"from=\d{4}-\d\d-\d\d&to="))
    _wait_for_charts(page)
    expect(page.locator("#chart-kpis [data-tile=opened]")).to_contain_text("4")
    # click a bar of the backlog: the queue opens filtered to that status
    _click_first_bar(page, "chart-backlog")
    page.wait_for_url(re.compile(r"/requests/queue/\?.*status=triaged"))
    expect(page.get_by_text("Triaged one")).to_be_visible()
    expect(page.get_by_text("Open for 2 hours")).to_have_count(0)
    assert csp_errors == []


def test_manager_opens_marketing_and_customers_and_drills_into_campaigns(page, data):
    browser_login(page, "boss", "pw-boss-123")
    page.goto("/dashboards/customers/")
    _wait_for_charts(page)
    expect(page.locator("#chart-cohorts .main-svg").first).to_be_visible()
    page.click("[data-tab=marketing]")
    _wait_for_charts(page)
    expect(page.locator("#chart-kpis [data-tile=spend]")).to_contain_text("120")
    # ROAS is a multiple and ROI a rate, the same on the dashboard as on the campaign (issue 18, item 8)
    expect(page.locator("#chart-kpis [data-tile=roas]")).to_contain_text("3.33×")
    expect(page.locator("#chart-kpis [data-tile=roi]")).to_contain_text("233.3%")
    page.select_option("#metric-by_channel", "roas")
    _click_first_bar(page, "chart-by_channel")
    page.wait_for_url(re.compile(r"/campaigns/\?.*channel=wechat"))
    expect(page.get_by_text("double11").first).to_be_visible()
    page.goto("/campaigns/double11/?tab=figures")
    expect(page.locator("[data-kpi=roas]")).to_have_text("3.33×")
    expect(page.locator("[data-kpi=roi]")).to_have_text("233.3%")


def test_manager_downloads_an_xlsx_report_when_the_progress_bar_completes(page, data):
    browser_login(page, "boss", "pw-boss-123")
    page.goto("/dashboards/reports/")
    page.select_option("#id_kind", "tickets")
    page.check("input[name=format][value=xlsx]")
    page.click("#start-report")
    row = page.locator("#report-jobs tbody tr").first
    expect(row.locator(".progress-bar")).to_have_text("100%")
    expect(row.locator("[data-job-status]")).to_have_text("Done")
    with page.expect_download() as download_info:
        row.locator("[data-download]").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    assert download.path().stat().st_size > 0
