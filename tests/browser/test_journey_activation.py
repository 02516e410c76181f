"""Playwright: support staff set up a webhook destination on the audience activation pages, sync a tag to it
(delta) from the page against a real receiver on loopback (tests/journeys/receiver.py; Celery runs eagerly in
tests), read the sync log's counts, and retry a sync the receiver refused: the retry re-sends only the batch
that got no 2xx, and the log then shows it done. The pages speak Chinese to a Chinese-speaking user."""

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.conftest import browser_login, in_english
from tests.journeys import factories as f
from tests.journeys import receiver as rx

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SECRET = "browser-sync-secret"


@pytest.fixture
def hook():
    receiver, url, server = rx.start(SECRET)
    yield receiver, url
    server.shutdown()
    server.server_close()


def test_support_staff_sync_a_tag_to_a_new_webhook_and_retry_what_failed(page, make_user, support_team, hook):
    in_english(make_user("amy", role="agent", team=support_team.name))
    receiver, url = hook
    receiver.fail_nth = 2  # the second batch is refused
    vip = f.manual_tag("vip")
    f.enter(vip, [f.customer(external_id=f"VIP{n}") for n in range(3)])

    # a new webhook destination, from the destinations page: batches of 2, signed with a secret
    browser_login(page, "amy", "pw-amy-123")
    page.goto("/journeys/")
    page.click("#destinations-link")
    page.get_by_role("button", name="New destination").click()
    form = page.locator("#new-destination-form")
    form.locator("[name=name]").fill("CRM hook")
    form.locator("[name=kind]").select_option("webhook")
    form.locator("[name=url]").fill(url)
    form.locator("[name=secret]").fill(SECRET)
    form.locator("[name=batch_size]").fill("2")
    form.get_by_role("button", name="Create destination").click()
    expect(page.locator("h1")).to_have_text("CRM hook")
    expect(page.locator(".alert-success")).to_contain_text("Destination “CRM hook” created.")

    # a delta sync of the tag, started from the destination's page; the receiver refuses its second batch
    sync = page.locator("#sync-form")
    sync.locator("[name=tag]").select_option("vip")
    sync.locator("[name=mode]").select_option("delta")
    sync.get_by_role("button", name="Start sync").click()
    expect(page.locator(".alert-success")).to_contain_text("queued")

    # the sync log shows it failed, with its counts and error, and a Retry button
    page.locator("#activation-nav").get_by_role("link", name="Sync log").click()
    row = page.locator("#sync-table tbody tr").first
    expect(row).to_have_attribute("data-status", "failed")
    expect(row.locator("[data-count=sent]")).to_have_text("2")
    expect(row.locator("td").nth(7)).to_have_text("3")  # entered
    expect(row).to_contain_text("batch 2/2: HTTP 500")
    keys_before = [r.idempotency_key for r in receiver.received]
    assert [r.status for r in receiver.received] == [200, 500]

    # Retry re-sends only the batch that failed; the log then shows the sync done with every member sent
    row.get_by_role("button", name="Retry").click()
    expect(page.locator(".alert-success")).to_contain_text("queued again")
    row = page.locator("#sync-table tbody tr").first
    expect(row).to_have_attribute("data-status", "done")
    expect(row.locator("[data-count=sent]")).to_have_text("3")
    expect(row).to_contain_text("2 attempts")
    expect(row.get_by_role("button", name="Retry")).to_have_count(0)
    assert [r.idempotency_key for r in receiver.received] == [*keys_before, keys_before[1]]
    delivered = sorted(
        i["external_id"] for r in receiver.received if r.status == 200 for i in r.body["entered"]
    )
    assert delivered == ["VIP0", "VIP1", "VIP2"] and all(r.signature_ok for r in receiver.received)

    # and the same pages in Chinese for a user who reads Chinese
    User.objects.filter(username="amy").update(language="zh-hans")
    page.reload()
    expect(page.locator("h1")).to_have_text("同步日志")
    expect(page.locator("#sync-table thead")).to_contain_text("已发送")
