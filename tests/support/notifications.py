"""What a distributor's admin (or an operator, for the platform) does on the Notifications page,
as functions for tests: add a sender or a recipient, press a sender's buttons, read the flashes."""

from __future__ import annotations

import html
import io
import json
import re
from typing import Any

from sqlmodel import select

from bss.db import session_scope
from bss.models import MailSender
from tests.support.portal import Portal


def page_of(distributor_id: int | None) -> str:
    """The page that shows an owner's senders: a distributor's Notifications, or Mail."""
    if distributor_id is None:
        return "/dashboard/mail"
    return f"/portal/distributors/{distributor_id}/notifications"


def forms_of(distributor_id: int | None) -> str:
    """Where an owner's forms post."""
    if distributor_id is None:
        return "/dashboard/mail/platform"
    return f"/portal/distributors/{distributor_id}/notifications"


def flashes(page: str) -> list[tuple[str, str]]:
    found = re.findall(r'class="flash flash-(\w+)" role="status">([^<]*)<', page)
    return [(kind, html.unescape(text)) for kind, text in found]


def post_and_read(portal: Portal, distributor_id: int | None, path: str, data: dict) -> str:
    """Submit a form, follow the redirect back to the page, return the page."""
    resp = portal.post(forms_of(distributor_id) + path, data, content_type="multipart/form-data")
    assert resp.status_code == 302, resp.text
    return portal.get(resp.location).text


def add_sender(
    portal: Portal,
    distributor_id: int | None,
    *,
    name: str,
    mode: str,
    instance_id: int | None = None,
    from_address: str = "",
    key: dict[str, Any] | bytes | None = None,
) -> str:
    """Fill in and submit Add a sender; returns the page shown afterwards."""
    data: dict[str, Any] = {"name": name, "mode": mode, "from_address": from_address}
    if instance_id is not None:
        data["instance_id"] = str(instance_id)
    if key is not None:
        raw = key if isinstance(key, bytes) else json.dumps(key).encode()
        data["key_file"] = (io.BytesIO(raw), "key.json")
    return post_and_read(portal, distributor_id, "/senders", data)


def sender_named(database_url: str, distributor_id: int | None, name: str) -> MailSender | None:
    with session_scope(database_url) as s:
        column = MailSender.distributor_id
        query = select(MailSender).where(
            column.is_(None) if distributor_id is None else column == distributor_id,  # type: ignore[union-attr]
            MailSender.name == name,
        )
        found = s.exec(query).first()
        if found is not None:
            s.expunge(found)
        return found


def start_mailbox_consent(portal: Portal, distributor_id: int | None, sender_id: int) -> str:
    """Click Authenticate mailbox; returns Google's authorization URL."""
    resp = portal.post(
        f"{forms_of(distributor_id)}/senders/{sender_id}/authenticate", {"display": "popup"}
    )
    assert resp.status_code == 302, resp.text
    return str(resp.location)


def result_of(resp: Any) -> dict:
    """What the pop-up's page posts back to the opener."""
    marker = '<script type="application/json" id="auth-result">'
    start = resp.text.index(marker) + len(marker)
    return json.loads(resp.text[start : resp.text.index("</script>", start)])
