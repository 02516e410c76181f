"""Pages fit their window (issue 18, item 15): no horizontal scrolling of the page itself at 1366 px."""

import pytest

from crm_tags import services
from crm_tags.models import TagBuild
from tests.browser.watch import overflow, widest
from tests.conftest import browser_login, in_english
from tests.crm_tags import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_tag_page_with_its_build_history_fits_1366_pixels(page, make_user, support_team):
    in_english(make_user("amy", role="agent", team=support_team.name))
    tag = services.tag_create(
        slug="big-spenders", name="Big spenders", kind="rule", category="Value", by=None
    )
    version = factories.version(tag, {"attr": "city", "op": "=", "value": "Shanghai"})
    TagBuild.objects.bulk_create(
        TagBuild(
            tag=tag,
            version=version,
            status=status,
            trigger="manual",
            seconds=12.5,
            members=1_234_567,
            entered=123_456,
            exited=98_765,
            excluded_by_consent=4_321,
            error="timeout while scanning crm_tags_event for the window of 30 days"
            if status == "failed"
            else "",
        )
        for status in ("done", "failed", "done", "done")
    )
    browser_login(page, "amy", "pw-amy-123")
    page.goto(f"/customers/tags/{tag.slug}/")
    page.wait_for_selector("#builds-table")
    assert overflow(page) <= 0


@pytest.mark.parametrize(
    "path, table", [("/requests/queue/", "#queue-table"), ("/requests/", "#requests-table")]
)
def test_request_lists_fit_a_phone(page, make_user, support_team, path, table):
    # at 390 px the tables were long columns of wrapped text wider than the screen
    from tests.tickets.factories import make_ticket

    requester = make_user("rosa", role="requester", team="E-commerce ops")
    agent = make_user("vic", role="agent", team=support_team.name)
    in_english(requester, agent)
    for n in range(3):
        make_ticket(requester, title=f"Coupon page number {n} shows the wrong price on the checkout step")
    who = agent if path.endswith("queue/") else requester
    browser_login(page, who.username, f"pw-{who.username}-123")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(path)
    page.wait_for_selector(table)
    # then neither the page nor the table scrolls sideways, and the key, title and status stay visible
    assert overflow(page) <= 0, widest(page)
    wrapper_overflow = page.evaluate(
        "(sel) => { const box = document.querySelector(sel).parentElement; return box.scrollWidth - box.clientWidth; }",
        table,
    )
    assert wrapper_overflow <= 0
    assert page.locator(f"{table} tbody tr").first.locator("td a").first.is_visible()
