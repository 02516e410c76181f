import pytest

from tests.conftest import browser_login, in_english

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


def test_two_factor_sign_in_set_up_then_asked_after_the_password(page, make_user):
    # given an agent who turns on two-factor sign-in from the user menu, reading the secret off the page
    import time
    from base64 import b32decode

    from django_otp.oath import TOTP

    def code(secret: str, steps_ahead: int = 0) -> str:
        key = b32decode(secret + "=" * (-len(secret) % 8))
        totp = TOTP(key)
        totp.time = time.time() + 30 * steps_ahead
        return f"{totp.token():06d}"

    in_english(make_user("tess", role="agent", team="MarTech support"))
    browser_login(page, "tess", "pw-tess-123")
    page.click("#user-menu")
    page.click("text=Two-factor sign-in")
    page.click("a:has-text('Set up two-factor sign-in')")
    assert page.locator("#totp-qr svg").count() == 1
    secret = page.inner_text("#totp-secret").replace(" ", "")
    page.fill("input[name=code]", code(secret))
    page.fill("input[name=password]", "pw-tess-123")
    page.click("#two-factor-setup button[type=submit]")
    # then the recovery codes are shown once
    page.wait_for_selector("#recovery-codes")
    assert page.locator("#recovery-codes code").count() == 10
    # when they sign out and in again with the password
    page.click("#user-menu")
    page.click("#logout-button")
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "tess")
    page.fill("input[name=password]", "pw-tess-123")
    page.click("button[type=submit]")
    # then the code is asked before anything else, and the app's next code lets them in
    page.wait_for_selector("#two-factor-verify")
    assert page.locator("#main-nav").count() == 0
    page.fill("input[name=code]", code(secret, steps_ahead=1))
    page.click("#two-factor-verify button[type=submit]")
    page.wait_for_selector("#main-nav")
    assert page.locator("[data-nav=queue]").count() == 1
