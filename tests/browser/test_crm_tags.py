"""Playwright: an agent builds a rule in the builder, previews it, gray-releases it; a manager releases it fully."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm_tags import services
from tests.conftest import api_client_for, browser_login
from tests.crm_tags import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXPECTED_RULE = {
    "all": [
        {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 5},
        {"event": "order", "agg": "avg", "field": "amount", "op": ">=", "value": 200},
    ]
}


def _shoppers() -> int:
    """40 customers with 0..7 recent views and varied orders; returns how many match the rule."""
    now = timezone.now()
    rows = []
    expected = 0
    for i in range(40):
        c = factories.customer(external_id=f"S{i:02d}")
        views = i % 8
        rows += [(c, "page_view", now - timedelta(days=d + 1), None) for d in range(views)]
        orders = [[Decimal("300"), Decimal("150")], [Decimal("100")], []][i % 3]
        rows += [(c, "order", now - timedelta(days=50), amount) for amount in orders]
        expected += views >= 5 and bool(orders) and sum(orders) / len(orders) >= 200
    factories.events(rows)
    return expected


def test_agent_builds_previews_and_gray_releases_then_manager_releases_fully(page, make_user, support_team):
    agent = make_user("amy", role="agent", team=support_team.name)
    manager = make_user("max", role="manager", team=support_team.name)
    for user in (agent, manager):
        user.language = "en"
        user.save()
    expected = _shoppers()
    services.tag_create(slug="high-potential", name="High potential", kind="rule", category="Value", by=agent)

    # the agent builds the rule without writing JSON
    browser_login(page, "amy", "pw-amy-123")
    page.goto("/customers/tags/high-potential/")
    page.locator(".rule-condition [data-action=remove]").first.click()
    expect(page.locator(".rule-condition")).to_have_count(0)
    root_add = page.locator(".rule-group [data-action=add-condition]").last
    root_add.click()
    first = page.locator(".rule-condition").nth(0)
    first.locator("[data-field=value]").fill("5")
    root_add.click()
    second = page.locator(".rule-condition").nth(1)
    second.locator("[data-field=event]").select_option("order")
    second.locator("[data-field=agg]").select_option("avg")
    second = page.locator(".rule-condition").nth(1)
    second.locator("[data-field=period]").select_option("all")
    second.locator("[data-field=value]").fill("200")
    page.click("#toggle-json")
    assert json.loads(page.locator("#id_definition").input_value()) == EXPECTED_RULE

    # saves and previews it
    page.click("#save-version")
    expect(page.locator("#versions")).to_contain_text("v1")
    page.click("#preview-button")
    expect(page.locator("#preview-matched")).to_have_text(str(expected))
    expect(page.locator("#preview-sample")).to_contain_text("page_view_count_30d")

    # releases to 10 %
    page.fill("#id_rollout_percent", "10")
    page.click("#release-button")
    expect(page.locator("#current-version")).to_contain_text("10 %")
    api = api_client_for(agent)
    gray = api.get("/api/v1/tags/high-potential/members/").json()["count"]
    expect(page.locator("#member-count")).to_have_text(str(gray))
    assert gray <= expected

    # the manager releases to everyone
    page.context.clear_cookies()
    browser_login(page, "max", "pw-max-123")
    page.goto("/customers/tags/high-potential/")
    page.fill("#id_rollout_percent", "100")
    page.click("#release-button")
    expect(page.locator("#current-version")).to_contain_text("100 %")
    full = api.get("/api/v1/tags/high-potential/members/").json()["count"]
    expect(page.locator("#member-count")).to_have_text(str(full))
    assert full == expected
