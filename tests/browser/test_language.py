"""The login page speaks the browser's language; a person's own choice wins after login (issue 18, item 16)."""

import pytest

from tests.conftest import browser_login, in_english

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("locale", "title"),
    [("zh-CN", "登录"), ("zh-TW", "登录"), ("zh", "登录"), ("en-US", "Log in"), ("fr-FR", "Log in")],
)
def test_the_login_page_follows_the_browser_language(browser, live_server, locale, title):
    context = browser.new_context(base_url=live_server.url, locale=locale)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        assert page.locator("button.btn-primary[type=submit]").inner_text().strip() == title
        assert page.locator("html").get_attribute("lang") == ("en" if title == "Log in" else "zh-hans")
    finally:
        context.close()


def test_a_person_who_chose_english_keeps_it_in_a_chinese_browser(browser, live_server, make_user):
    in_english(make_user("emma", role="agent", team="MarTech support"))
    context = browser.new_context(base_url=live_server.url, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        assert page.locator("button.btn-primary[type=submit]").inner_text().strip() == "登录"
        browser_login(page, "emma", "pw-emma-123")
        assert page.locator("html").get_attribute("lang") == "en"
    finally:
        context.close()
