"""What a new user trips over in the first hour (issue 18): the API docs page, the site icon."""

import pytest

from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _watch(page) -> list[str]:
    """Console errors (a Content-Security-Policy refusal is one) and failed or 4xx/5xx requests."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    # a request the browser itself cancels because the page navigated on (a form posted before the
    # icon arrived) is not a failure of the server: anything else is
    page.on(
        "requestfailed",
        lambda request: (
            problems.append(f"failed: {request.url} ({request.failure})")
            if request.failure != "net::ERR_ABORTED"
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status}: {response.url}") if response.status >= 400 else None
        ),
    )
    return problems


def test_the_api_docs_page_lists_the_operations(page, make_user):
    make_user("dora", role="agent", team="MarTech support")
    browser_login(page, "dora", "pw-dora-123")
    problems = _watch(page)
    page.goto("/api/docs/")
    # Swagger UI draws one block per operation once its script ran and the schema loaded
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/tickets/" in path for path in paths)
    assert problems == []


def test_pages_have_an_icon_and_no_failed_request(page, make_user):
    problems = _watch(page)
    page.goto("/accounts/login/")
    make_user("ivo", role="agent", team="MarTech support")
    browser_login(page, "ivo", "pw-ivo-123")
    page.goto("/requests/queue/")
    page.wait_for_load_state("networkidle")
    icon = page.request.get("/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert page.locator("link[rel=icon]").count() == 1
    assert problems == []
