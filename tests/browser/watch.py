"""What a browser test watches on a page: console errors, failed requests, a page wider than its window."""

from playwright.sync_api import Page


def watch(page: Page) -> list[str]:
    """Console errors (a Content-Security-Policy refusal is one) and failed or 4xx/5xx requests, from now on."""
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


def overflow(page: Page) -> int:
    """How many pixels the page is wider than its window."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def widest(page: Page) -> list[str]:
    """The elements reaching past the window's right edge (for the failure message)."""
    return page.evaluate(
        "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > "
        "document.documentElement.clientWidth + 0.5).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + "
        "e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
    )
