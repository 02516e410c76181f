import pytest

from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_switch_to_chinese_and_see_translated_navigation(page, make_user):
    user = make_user("lin", role="agent", team="MarTech support")
    user.language = "en"
    user.save()
    browser_login(page, "lin", "pw-lin-123")
    nav = page.locator("#main-nav")
    assert nav.locator("[data-nav=queue]").inner_text() == "Queue"
    page.click("#user-menu")
    page.select_option("#language-select", "zh-hans")
    page.wait_for_selector("html[lang=zh-hans]")
    assert nav.locator("[data-nav=queue]").inner_text() == "工单队列"
    assert nav.locator("[data-nav=kb]").inner_text() == "知识库"
    assert page.locator("[data-nav=dashboards]").count() == 0


def test_requester_sees_no_queue_and_is_refused_it(page, make_user):
    make_user("rita", role="requester")
    browser_login(page, "rita", "pw-rita-123")
    assert page.locator("[data-nav=queue]").count() == 0
    response = page.goto("/requests/queue/")
    assert response.status == 403
