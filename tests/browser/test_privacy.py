"""Playwright: a manager opens a customer, withdraws personalisation, files an erasure, approves it and
reads the completion report; an agent without view_pii sees the customer masked (issue 15)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm_tags.models import Customer
from privacy.models import Consent, PrivacyRequest
from tests.conftest import browser_login
from tests.crm_tags import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL, PHONE = "li.na.browser@example.com", "13700001111"


@pytest.fixture
def people(make_user, support_team):
    manager = make_user("dpo", role="manager", team=support_team.name, pii=True)
    agent = make_user("amy", role="agent", team=support_team.name)
    for user in (manager, agent):
        user.language = "en"
        user.save()
    customer = factories.customer(external_id="LINA1", name="Li Na", email=EMAIL, phone=PHONE)
    factories.events([(customer, "order", timezone.now() - timedelta(days=2), 120)])
    return manager, agent


def test_manager_withdraws_consent_files_an_erasure_approves_it_and_reads_the_report(page, people):
    browser_login(page, "dpo", "pw-dpo-123")
    page.goto("/customers/c/LINA1/")
    expect(page.locator("#customer-email")).to_have_text(EMAIL)

    # withdraw personalisation in the consent panel (it loads by itself)
    panel = page.locator("#consent-panel")
    expect(panel.locator("#consent-state-personalisation")).to_have_attribute("data-state", "unknown")
    panel.locator("select[name=personalisation]").select_option("withdrawn")
    panel.locator("#consent-form-personalisation button[type=submit]").click()
    expect(panel.locator("#consent-state-personalisation")).to_have_attribute("data-state", "withdrawn")
    expect(panel.locator("#consent-history")).to_contain_text("Personalisation")
    assert Consent.objects.get(customer__external_id="LINA1", purpose="personalisation").state == "withdrawn"

    # file the erasure, approve it, and read the completion report
    page.locator("#request-erase").click()
    expect(page.locator("#request-status")).to_contain_text("Pending approval")
    page.locator("#approve-request").click()
    expect(page.locator("#request-status")).to_contain_text("Done")
    report = page.locator("#completion-report")
    expect(report).to_be_visible()
    expect(report).to_contain_text("1")
    assert EMAIL not in page.content() and "LINA1" not in page.content()
    assert not Customer.objects.filter(external_id="LINA1").exists()
    assert PrivacyRequest.objects.get().status == "done"


def test_an_agent_sees_the_customer_masked(page, people):
    browser_login(page, "amy", "pw-amy-123")
    page.goto("/customers/c/LINA1/")
    expect(page.locator("#customer-email")).to_have_text("l***@example.com")
    expect(page.locator("#customer-phone")).to_have_text("137****1111")
    expect(page.locator("#customer-name")).to_have_text("L***")
    assert EMAIL not in page.content() and PHONE not in page.content()
    expect(page.locator("#request-erase")).to_have_count(0)
