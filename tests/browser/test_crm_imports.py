"""Playwright: an agent imports customers from the browser and sees the job finish with its summary; a bad
file shows its row errors and changes nothing."""

import io

import pytest
from playwright.sync_api import expect

from crm_tags import import_jobs, importers
from crm_tags.models import Customer
from tests.conftest import browser_login, in_english

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n"


@pytest.fixture
def agent_in_browser(page, make_user, support_team):
    in_english(make_user("ida", role="agent", team=support_team.name))
    importers.import_customers(io.StringIO(HEADER + "K1,Kim,,,Shanghai,f,,,web\n"))
    browser_login(page, "ida", "pw-ida-123")
    page.goto("/customers/")
    page.click("#imports-link")
    return page


def _upload(page, text: str) -> None:
    page.select_option("#id_kind", "customers")
    page.set_input_files(
        "#id_file", files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.click("#import-submit")


def test_an_agent_uploads_customers_and_sees_the_import_finish_with_a_summary(agent_in_browser, monkeypatch):
    # given the job is left queued (no worker yet), so the page shows its progress bar and polls
    queued: list[int] = []
    monkeypatch.setattr(import_jobs, "enqueue", lambda name, job_id: queued.append(job_id))
    page = agent_in_browser
    _upload(
        page, HEADER + "K1,Kim Park,,,Shanghai,f,,,web\nN1,Ned,,,Hangzhou,m,,,web\nN2,Ona,,,Wuhan,f,,,app\n"
    )
    status = page.locator("#import-job-status")
    expect(status).to_have_attribute("data-status", "queued")
    expect(status.locator(".progress")).to_be_visible()
    # when the worker runs it
    import_jobs.import_job_run(job_id=queued[0])
    # then the polled page shows it finished, with its summary
    expect(status).to_have_attribute("data-status", "done")
    expect(page.locator("[data-summary]")).to_contain_text("3 rows imported.")
    expect(page.locator("[data-added]")).to_have_text("2")
    expect(page.locator("[data-updated]")).to_have_text("1")
    assert Customer.objects.get(external_id="K1").name == "Kim Park"


def test_an_agent_uploads_a_bad_file_and_sees_each_bad_row_with_nothing_changed(agent_in_browser):
    page = agent_in_browser
    _upload(page, HEADER + "K1,Changed,,,,,,,\nN1,Ned,not-an-email,,,,,,\n,Nameless,,,,,,,\n")
    expect(page.locator("#import-job-status")).to_have_attribute("data-status", "rejected")
    expect(page.locator("[data-rejected]")).to_contain_text("2 bad rows; nothing was imported.")
    rows = page.locator("#import-errors tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Not an e-mail address.")
    expect(rows.nth(1)).to_contain_text("Required.")
    expect(page.locator("[data-error-file]")).to_be_visible()
    assert list(Customer.objects.values_list("external_id", "name")) == [("K1", "Kim")]
