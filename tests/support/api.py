"""The billing API as a test calls it: an API key of the tenant, the app in process, the job ids
it sent to the broker kept in a list (the edge: no worker)."""

from __future__ import annotations

from typing import Any

import pytest

from bss.accounts import create_api_key
from bss.db import session_scope
from web import create_app


@pytest.fixture
def api(settings, tenant):
    with session_scope(settings.database_url) as s:
        key = create_api_key(s, distributor=s.merge(tenant), label="intake")
    app = create_app(settings)
    sent: list[str] = []
    app.extensions["bss.send"] = sent.append
    client = app.test_client()

    def post(body: dict[str, Any], **headers: str):
        return client.post(
            "/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {key}", **headers}
        )

    post.sent = sent  # type: ignore[attr-defined]
    post.key = key  # type: ignore[attr-defined]
    return post
