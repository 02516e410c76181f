"""What a new user trips over in the first hour (issue 18): the API docs page, the site icon."""

import pytest

from tests.browser.watch import watch
from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_page_lists_the_operations(page, make_user):
    make_user("dora", role="agent", team="MarTech support")
    browser_login(page, "dora", "pw-dora-123")
    problems = watch(page)
    page.goto("/api/docs/")
    # Swagger UI draws one block per operation once its script ran and the schema loaded
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/tickets/" in path for path in paths)
    assert problems == []


def test_pages_have_an_icon_and_no_failed_request(page, make_user):
    problems = watch(page)
    page.goto("/accounts/login/")
    make_user("ivo", role="agent", team="MarTech support")
    browser_login(page, "ivo", "pw-ivo-123")
    page.goto("/requests/queue/")
    page.wait_for_load_state("networkidle")
    icon = page.request.get("/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert page.locator("link[rel=icon]").count() == 1
    assert problems == []
