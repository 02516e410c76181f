"""Issue 18, item 5: the reports form says nothing is missing before anyone has typed, nor after a start."""

import pytest
from playwright.sync_api import expect

from tests.analytics.factories import customer_make
from tests.conftest import browser_login, in_english

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def boss(make_user, support_team):
    boss = in_english(make_user("boss", role="manager", team=support_team.name))
    customer_make("c-1", name="Li Lei")
    return boss


def test_reports_form_shows_no_required_error_on_first_load_or_after_a_start(page, boss):
    # given a manager on the reports page
    browser_login(page, "boss", "pw-boss-123")
    page.goto("/dashboards/reports/")

    # then the form shows no error before anything was sent
    form = page.locator("#report-form")
    expect(form).to_be_visible()
    expect(form.locator("[data-error-for], .alert-danger")).to_have_count(0)
    expect(form).not_to_contain_text("required")

    # when a report is started
    page.select_option("#id_kind", "customers")
    page.click("#start-report")

    # then the job is listed, and the form is a fresh one: still no "required" error, CSV chosen again
    expect(page.locator("#report-jobs tbody tr")).to_have_count(1)
    expect(page.locator("#report-jobs [data-job-status]").first).to_have_text("Done")
    expect(form.locator("[data-error-for], .alert-danger")).to_have_count(0)
    expect(form).not_to_contain_text("required")
    expect(page.locator("input[name=format][value=csv]")).to_be_checked()
