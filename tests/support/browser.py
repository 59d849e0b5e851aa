"""What browser tests watch besides the page itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def csp_violations(context: Any) -> list[str]:
    """What the browser refuses under our Content-Security-Policy from now on, in every page of
    the Playwright `context` (pop-ups included), as its console reports it."""
    found: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    context.on("console", on_console)
    return found


# A full-page capture is evidence for a person, not the test's check. Under the suite's load on
# two cores chromium has taken longer than a page's 15 s default to produce one (after its fonts
# had loaded), so a capture gets a minute of its own.
SCREENSHOT_TIMEOUT_MS = 60_000


def keep_screenshot(page: Any, path: Path) -> None:
    """A full-page screenshot of `page` at `path`, its folder made if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
