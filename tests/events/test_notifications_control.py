"""The instance page's Google notifications card: its state, and push / pull / off, registering
at the sandbox over HTTP (resellernotify.register, then a Pub/Sub subscription)."""

from __future__ import annotations

import html
import json

import pytest
import requests
from sqlmodel import select

from bss.db import session_scope
from bss.models import AuditEntry, Instance
from tests.support.portal import authenticated_instance, portal_settings, sandbox_post


@pytest.fixture
def settings_for_portal(tmp_path, database_url, secret_keys, redis_url, google):
    """The portal's settings with the platform's own service account (a key from the sandbox)."""
    settings = portal_settings(
        tmp_path, database_url, secret_keys, redis_url, google, "http://localhost"
    )
    key = sandbox_post(
        google.sandbox, "/_sandbox/service-accounts", {"project": google.project, "name": "bss"}
    )
    path = tmp_path / "platform-key.json"
    path.write_text(json.dumps(key))
    settings.events_service_account_file = str(path)
    return settings


def _instance(database_url: str, instance_id: int) -> Instance:
    with session_scope(database_url) as s:
        row = s.get(Instance, instance_id)
        s.expunge(row)
        return row


def test_pull_registers_at_google_and_off_turns_it_off(portal, google, database_url):
    instance_id = authenticated_instance(portal, google)
    page = portal.get(f"/portal/instances/{instance_id}").text
    assert 'data-state="off"' in page and 'id="events-mode-pull"' in page
    # When the admin chooses pull and saves
    resp = portal.post(f"/portal/instances/{instance_id}/notifications", {"mode": "pull"})
    assert resp.status_code == 302
    instance = _instance(database_url, instance_id)
    # Then Google gave the reseller's topic and our subscription to it exists at Pub/Sub
    assert instance.events_mode == "pull" and instance.events_error is None
    assert instance.events_topic.startswith("projects/") and instance.events_subscription
    at_pubsub = requests.get(
        f"{google.sandbox}/_sandbox/pubsub/subscriptions/{instance.events_subscription}",
        timeout=10,
    )
    assert at_pubsub.status_code == 200 and at_pubsub.json()["topic"] == instance.events_topic
    page = html.unescape(portal.get(f"/portal/instances/{instance_id}").text)
    assert "Google's notifications are registered (pull)." in page
    assert 'data-state="receiving"' in page and instance.events_subscription in page
    with session_scope(database_url) as s:
        entry = s.exec(
            select(AuditEntry).where(
                AuditEntry.action == "instance.notifications",
                AuditEntry.distributor_id == instance.distributor_id,
            )
        ).one()
        assert entry.details["mode"] == "pull" and entry.details["was"] == "off"
    # And off turns them off again
    portal.post(f"/portal/instances/{instance_id}/notifications", {"mode": "off"})
    assert _instance(database_url, instance_id).events_mode == "off"
    page = html.unescape(portal.get(f"/portal/instances/{instance_id}").text)
    assert "Google's notifications are off for this instance." in page


def test_a_mode_that_does_not_exist_changes_nothing(portal, google, database_url):
    instance_id = authenticated_instance(portal, google)
    resp = portal.post(f"/portal/instances/{instance_id}/notifications", {"mode": "carrier-pigeon"})
    page = html.unescape(portal.get(resp.location).text)
    assert "Choose push, pull or off for Google's notifications." in page
    assert _instance(database_url, instance_id).events_mode == "off"


def test_an_instance_not_authenticated_is_told_why_and_left_off(portal, database_url):
    instance_id = portal.create_instance(
        "unauth", "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com", "s"
    )
    resp = portal.post(f"/portal/instances/{instance_id}/notifications", {"mode": "pull"})
    page = html.unescape(portal.get(resp.location).text)
    assert "Notifications not changed:" in page and "authenticate it" in page
    assert _instance(database_url, instance_id).events_mode == "off"
