"""Playwright (issue 19): a manager builds the tag "at risk and CLV ≥ 500" from computed attributes in the
rule builder, without writing JSON, and previews it; the customer page shows the value panel."""

import datetime
import json

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm_tags import services
from crm_tags.models import CustomerValue
from tests.conftest import browser_login, in_english
from tests.crm_tags import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXPECTED_RULE = {
    "all": [
        {"attr": "rfm_segment", "op": "=", "value": "at_risk"},
        {"attr": "clv_12m", "op": ">=", "value": 500},
    ]
}


def _valued_customers() -> None:
    """Two at-risk customers worth 500 or more, one worth less, one champion worth more."""
    for external_id, segment, clv in [
        ("RISK_RICH", "at_risk", 800.0),
        ("RISK_EDGE", "at_risk", 500.0),
        ("RISK_POOR", "at_risk", 120.0),
        ("CHAMP", "champions", 2000.0),
    ]:
        CustomerValue.objects.create(
            customer=factories.customer(external_id=external_id),
            segment=segment,
            recency_score=1,
            frequency_score=3,
            monetary_score=4,
            clv_12m=clv,
            lead_score=12.5,
            computed_at=timezone.now(),
            as_of=datetime.date(2026, 12, 1),
        )


def _attribute_condition(page, index: int, field: str, op: str) -> object:
    condition = page.locator(".rule-condition").nth(index)
    condition.locator("[data-field=kind]").select_option("attr")
    condition = page.locator(".rule-condition").nth(index)
    condition.locator("[data-field=attr]").select_option(field)
    condition = page.locator(".rule-condition").nth(index)
    condition.locator("[data-field=op]").select_option(op)
    return page.locator(".rule-condition").nth(index)


def test_a_manager_builds_at_risk_and_clv_at_least_500_and_previews_it(page, make_user, support_team):
    manager = in_english(make_user("mia", role="manager", team=support_team.name, pii=True))
    _valued_customers()
    services.tag_create(
        slug="at-risk-valuable", name="At risk, valuable", kind="rule", category="", by=manager
    )

    browser_login(page, "mia", "pw-mia-123")
    page.goto("/customers/tags/at-risk-valuable/")
    page.locator(".rule-condition [data-action=remove]").first.click()
    expect(page.locator(".rule-condition")).to_have_count(0)
    add = page.locator(".rule-group [data-action=add-condition]").last
    add.click()
    segment = _attribute_condition(page, 0, "rfm_segment", "=")
    # the segment is chosen by its words, not typed as a code
    expect(segment.locator("[data-field=value] option[value=at_risk]")).to_have_text("At risk of churning")
    segment.locator("[data-field=value]").select_option("at_risk")
    add.click()
    clv = _attribute_condition(page, 1, "clv_12m", ">=")
    clv.locator("[data-field=value]").fill("500")
    page.click("#toggle-json")
    expect(page.locator("#id_definition")).not_to_have_value("")
    assert json.loads(page.locator("#id_definition").input_value()) == EXPECTED_RULE

    page.click("#save-version")
    expect(page.locator("#versions")).to_contain_text("v1")
    page.click("#preview-button")
    expect(page.locator("#preview-matched")).to_have_text("2")
    expect(page.locator("#preview-sample")).to_contain_text("clv_12m")


def test_the_customer_page_shows_the_value_panel(page, make_user, support_team):
    in_english(make_user("mo", role="manager", team=support_team.name))
    _valued_customers()

    browser_login(page, "mo", "pw-mo-123")
    page.goto("/customers/c/RISK_RICH/")
    expect(page.locator("#customer-value-segment")).to_have_text("At risk of churning")
    expect(page.locator("#customer-value-clv")).to_have_text("800.00")
    expect(page.locator("#customer-value-rfm")).to_have_text("1 / 3 / 4")
