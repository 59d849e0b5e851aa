"""What a user does in the portal and on Google's consent page, as functions for tests."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.hidden: list[tuple[str, str]] = []
        self.scopes: list[str] = []
        self.accounts: list[str] = []
        self._in_select = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden.append((a["name"], a.get("value", "")))
        elif tag == "input" and a.get("type") == "checkbox" and a.get("name") == "scope":
            self.scopes.append(a["value"])
        elif tag == "select" and a.get("name") == "account":
            self._in_select = True
        elif tag == "option" and self._in_select:
            self.accounts.append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._in_select = False


def google_consent(
    auth_url: str,
    *,
    account: str,
    scopes: list[str] | None = None,
    action: str = "allow",
) -> str:
    """Answer Google's consent page as a user would; returns where Google sends the browser."""
    page = requests.get(auth_url, allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.text[:500]
    form = _FormParser()
    form.feed(page.text)
    ticked = form.scopes if scopes is None else [s for s in form.scopes if s in scopes]
    data = [*form.hidden, ("account", account), *(("scope", s) for s in ticked), ("action", action)]
    answer = requests.post(
        urljoin(auth_url, form.action), data=data, allow_redirects=False, timeout=10
    )
    assert answer.status_code in (302, 303), answer.text[:500]
    return answer.headers["Location"]


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
