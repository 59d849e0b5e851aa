"""The demo's share of Google's notifications: the platform's own service account at the sandbox
(its key kept under BSS_HOME), and the demo instance registered for pushes, so that a change made
in the sandbox's "Admin console" shows on the dashboard's events page and reaches billing.

Kept apart from bss.tools.demo to keep that module short.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import requests

from bss.accounts import distributor_by_slug
from bss.db import session_scope
from bss.errors import BssError
from bss.events import register_events
from bss.instances import get_instance
from bss.settings import Settings

PLATFORM_PROJECT = "bss-platform"
KEY_FILE = "events-service-account.json"


def _state(sandbox: str) -> dict:
    resp = requests.get(f"{sandbox}/_sandbox/state", timeout=10)
    resp.raise_for_status()
    return resp.json()


def _post(sandbox: str, path: str, body: dict) -> dict:
    resp = requests.post(sandbox + path, json=body, timeout=10)
    resp.raise_for_status()
    return resp.json()


def platform_key(sandbox: str, home: Path, *, reseller: str) -> Path:
    """The platform's service account at the sandbox, its JSON key in `home` (the same at every
    start while the sandbox still knows it). Its Cloud project sits under `reseller`, as the
    sandbox wants a project to belong to someone."""
    path = home / KEY_FILE
    state = _state(sandbox)
    known = {a.get("client_email") for a in state.get("service_accounts") or []}
    if path.exists():
        try:
            if json.loads(path.read_text()).get("client_email") in known:
                return path
        except (OSError, ValueError):
            pass  # unreadable: a new key replaces it
    projects = {p.get("project_id") for p in state.get("projects") or []}
    if PLATFORM_PROJECT not in projects:
        _post(sandbox, "/_sandbox/projects", {"reseller": reseller, "project_id": PLATFORM_PROJECT})
    key = _post(
        sandbox,
        "/_sandbox/service-accounts",
        {"project": PLATFORM_PROJECT, "name": f"bss-events-{secrets.token_hex(3)}"},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(key, indent=2))
    path.chmod(0o600)
    return path


def register_demo_instance(settings: Settings, *, distributor: str, instance: str) -> str:
    """Register the demo instance for pushes; a line for the banner saying how it went."""
    try:
        with session_scope(settings.database_url) as s:
            d = distributor_by_slug(s, distributor)
            found = get_instance(s, distributor_id=d.id, name=instance)
            register_events(s, settings, found, "push")
            error, subscription = found.events_error, found.events_subscription
    except BssError as exc:
        return f"not registered: {exc.message}"
    if error:
        return f"not registered: {error}"
    return f"pushed to {settings.push_url} (subscription {subscription})"
