"""The audit log shows each entry's details for people, not as Python prints them."""

from __future__ import annotations

import html
import re

import pytest

from web.dashboard.audit import for_people


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        ("", "—"),
        ([], "—"),
        ({}, "—"),
        (True, "yes"),
        (False, "no"),
        (3, "3"),
        ("main", "main"),
        (
            ["https://a.example/cb", "https://b.example/cb"],
            "https://a.example/cb, https://b.example/cb",
        ),
        ({"state": "failed", "instance": None}, "state: failed; instance: —"),
        ([{"ok": True}, "x"], "ok: yes, x"),
    ],
)
def test_a_detail_is_written_for_people(value, shown):
    assert for_people(value) == shown


def details_of(page: str, action: str) -> list[str]:
    row = re.search(
        rf'(?s)<tr class="audit-entry" data-action="{re.escape(action)}">(.*?)</tr>', page
    )
    assert row, f"no {action} entry on the page"
    cells = re.findall(r"(?s)<td>(.*?)</td>", row.group(1))
    lines = re.findall(r'(?s)<div><span class="muted">(.*?)</span>(.*?)</div>', cells[-1])
    return [html.unescape(f"{k} {v.strip()}") for k, v in lines]


def test_the_audit_page_shows_lists_and_booleans_for_people(portal, google):
    # Given an instance whose Client Secret was replaced, and that was authenticated
    from tests.support.portal import authenticated_instance

    instance_id = authenticated_instance(portal, google)
    portal.post(
        f"/portal/instances/{instance_id}/edit",
        {"name": "main", "mode": "oauth", "client_id": google.client_id, "client_secret": "new"},
    )
    # When the distributor's admin reads the audit log
    page = portal.get("/dashboard/audit").text
    # Then booleans read yes / no, lists are comma-separated, nothing is a Python repr
    update = details_of(page, "instance.update")
    assert "client_secret_replaced: yes" in update
    assert any(line.startswith("changes: The new Client Secret is stored.") for line in update)
    scopes = next(line for line in details_of(page, "instance.authenticate") if "scopes" in line)
    assert scopes.startswith("scopes: https://www.googleapis.com/auth/")
    assert ", https://www.googleapis.com/auth/" in scopes
    for repr_like in ("['", "True", "False", "None", "{'"):
        assert repr_like not in " ".join(update + [scopes])
