"""What browser tests watch besides the page itself."""

from __future__ import annotations

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
