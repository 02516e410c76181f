"""Playwright: on a campaign's A/B tab a requester adds tests with their design and reads the verdict:
the test used, each challenger against the control, the winner, the MDE and power, the sequential label."""

import pytest
from playwright.sync_api import expect

from tests.campaigns.factories import campaign_make
from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_test(page, name: str, variants: str, **design: str) -> None:
    page.fill("#ab-form #id_name", name)
    page.fill("#ab-form #id_min_sample", design.get("min_sample", "1000"))
    page.fill("#ab-form #id_planned_sample", design.get("planned_sample", ""))
    page.fill("#ab-form #id_baseline_rate", design.get("baseline_rate", ""))
    page.select_option("#ab-form #id_sequential", design.get("sequential", ""))
    page.fill("#ab-form #id_variants", variants)
    page.click("#ab-form button[type=submit]")


def test_ab_tab_shows_the_verdict_of_each_comparison(page, requester):
    # Given a campaign of the requester's team
    campaign_make(owner=requester, code="ab-promo", name="AB promo")
    browser_login(page, "req", "pw-req-123")
    page.goto("/campaigns/ab-promo/")
    page.click('[data-tab="ab_tests"]')

    # When a three-variant test is added with a planned 2,000 per variant from a 10 % control rate
    add_test(
        page,
        "Hero",
        "control, 2000, 200\nred, 2000, 250\nblue, 2000, 120",
        planned_sample="2000",
        baseline_rate="10",
    )

    # Then red wins (blue is further from the control, but worse), by the z-test
    card = page.locator('[data-ab-test="Hero"]')
    expect(card.locator("[data-ab-status]")).to_have_attribute("data-ab-winner", "red")
    expect(card.locator("[data-ab-test-used]")).to_have_attribute("data-ab-test-used", "z")
    expect(card.locator('[data-comparison="red"]')).to_have_attribute("data-significant", "true")
    expect(card.locator('[data-comparison="blue"]')).to_have_attribute("data-significant", "true")
    expect(card.locator('[data-ab="comparisons"] tbody tr')).to_have_count(2)
    # And the design figures: the MDE for the plan, 80 % power reached at the planned sample, the omnibus
    expect(card.locator('[data-ab="mde"]')).to_contain_text("%")
    expect(card.locator('[data-ab="power"]')).to_contain_text("80%")
    expect(card.locator('[data-ab="omnibus"]')).to_contain_text("p ")
    expect(card.locator("[data-ab-sequential]")).to_have_attribute("data-ab-sequential", "")

    # When a tiny test is added: (6, 0) vs (6, 4), significant by the z-test but not by Fisher's
    add_test(page, "Tiny", "A, 6, 0\nB, 6, 4", min_sample="1")
    tiny = page.locator('[data-ab-test="Tiny"]')
    # Then Fisher's exact test is used and nothing wins
    expect(tiny.locator("[data-ab-test-used]")).to_have_attribute("data-ab-test-used", "fisher")
    expect(tiny.locator("[data-ab-status]")).to_have_attribute("data-ab-status", "not_significant")
    expect(tiny.locator('[data-comparison="B"]')).to_have_attribute("data-significant", "false")

    # When a sequential test is added, it is labelled as such and judged by the mSPRT
    add_test(
        page,
        "Always valid",
        "A, 5000, 500\nB, 5000, 600",
        planned_sample="5000",
        baseline_rate="10",
        sequential="msprt",
    )
    sequential = page.locator('[data-ab-test="Always valid"]')
    expect(sequential.locator("[data-ab-sequential]")).to_have_attribute("data-ab-sequential", "msprt")
    expect(sequential.locator("[data-ab-test-used]")).to_have_attribute("data-ab-test-used", "msprt")
    expect(sequential.locator("[data-ab-status]")).to_have_attribute("data-ab-winner", "B")
