"""Playwright: a manager sees a customer with three identifiers and a merge, and unmerges it."""

import pytest
from playwright.sync_api import expect

from crm_tags.identity import customers_merge
from crm_tags.models import Customer, CustomerIdentifier
from tests.conftest import browser_login, in_english
from tests.crm_tags import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_sees_identifiers_and_a_merge_and_unmerges_it(page, make_user, support_team):
    manager = in_english(make_user("maxi", role="manager", team=support_team.name, pii=True))
    older = factories.customer(external_id="ONE-A", name="Wang Fang")
    CustomerIdentifier.objects.create(customer=older, kind="email", value="wang.fang@example.com")
    CustomerIdentifier.objects.create(customer=older, kind="phone", value="+8613712345678")
    newer = factories.customer(external_id="ONE-B", name="Wang Fang")
    merge = customers_merge(survivor=older, loser=newer, by=manager, rebuild=False)
    # three identifiers: the e-mail, the phone, and the external id of the merged profile (plus its own)
    assert CustomerIdentifier.objects.filter(customer=older).exclude(value="ONE-A").count() == 3

    browser_login(page, "maxi", "pw-maxi-123")
    page.goto("/customers/c/ONE-A/")
    identifiers = page.locator("#customer-identifiers tbody tr")
    expect(identifiers).to_have_count(4)
    expect(page.locator("#customer-identifiers")).to_contain_text("wang.fang@example.com")
    expect(page.locator("#customer-identifiers")).to_contain_text("+8613712345678")
    expect(page.locator(f"#merge-{merge.pk}")).to_contain_text("ONE-B merged in")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#unmerge-{merge.pk}").click()

    expect(page.locator(f"#unmerge-{merge.pk}")).to_have_count(0)
    expect(page.locator(f"#merge-{merge.pk}")).to_contain_text("undone")
    # back to what it held before the merge: its e-mail, phone and own external id
    expect(identifiers).to_have_count(3)
    expect(page.locator("#customer-identifiers")).not_to_contain_text("ONE-B")
    assert Customer.objects.filter(external_id="ONE-B").exists()
