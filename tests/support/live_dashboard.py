"""The web app as a real HTTP server for browser tests of its pages, and what those tests do in
the browser: sign in, measure the page, keep a screenshot."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from bss.tools import free_port
from tests.support.browser import keep_screenshot
from tests.support.portal import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "layout"
DESKTOP, PHONE = 1366, 400


@contextmanager
def served(app: Any) -> Iterator[str]:
    """`app` behind werkzeug's threaded server on a free port; its base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def new_page(browser: Any, width: int = DESKTOP, height: int = 900) -> Any:
    """A page in a fresh browser context `width` pixels wide that may use the clipboard."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(15000)
    return page


def sign_in(page: Any, base: str, email: str, then: str = "/dashboard/") -> None:
    page.goto(f"{base}/sign-in")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#site-nav")
    page.goto(base + then)


def page_width(page: Any) -> int:
    """How wide the page's content is: more than the viewport means it scrolls sideways."""
    return int(page.evaluate("document.scrollingElement.scrollWidth"))


def page_height(page: Any) -> int:
    return int(page.evaluate("document.scrollingElement.scrollHeight"))


def shot(page: Any, name: str) -> None:
    """A full-page screenshot, named with the viewport's width: test-artifacts/layout/."""
    keep_screenshot(page, ARTIFACTS / f"{name}-{page.viewport_size['width']}.png")


def header_links(page: Any) -> list[tuple[str, str, str]]:
    """(id, label, path) of each link of the site header, in order."""
    return [
        (a.get_attribute("id"), a.inner_text().strip(), a.get_attribute("href"))
        for a in page.query_selector_all("#site-nav a")
    ]
