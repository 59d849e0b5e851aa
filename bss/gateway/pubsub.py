"""Cloud Pub/Sub for the platform's own subscriptions to Reseller notifications.

The platform has one Google service account of its own (BSS_EVENTS_SERVICE_ACCOUNT_FILE): every
reseller names it to `resellernotify.register`, it owns our Pub/Sub subscriptions (in its key's
Cloud project), it pulls, and it is the identity in the OIDC token of every push. Its calls go
through a Gateway like every other Google call: classified errors, brief retries, each recorded.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.oauth2 import service_account

from bss.errors import ConfigurationError, PermanentGoogleError
from bss.gateway.gateway import CallRecord, Gateway
from bss.settings import Settings

PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"
#: Seconds Pub/Sub waits for an ack before delivering a message again (10-600).
ACK_DEADLINE_SECONDS = 60
#: Messages taken in one pull (Pub/Sub allows up to 1000).
PULL_BATCH = 100
KEY_SETTING = "BSS_EVENTS_SERVICE_ACCOUNT_FILE"


def read_platform_key(path: str) -> dict[str, Any]:
    """The platform's service-account key from `path`; a clear error when it is not one."""
    file = Path(path)
    try:
        info = json.loads(file.read_text())
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"{KEY_SETTING} names a file that does not exist.",
            hint="Download a JSON key of the platform's service account and point the "
            "setting at it.",
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"{KEY_SETTING} does not name a readable JSON file ({type(exc).__name__}).",
            hint="Point it at the JSON key Google Cloud console downloads for a service account.",
        ) from exc
    missing = [
        k
        for k in ("client_email", "private_key", "project_id")
        if not isinstance(info, dict) or not info.get(k)
    ]
    if missing or info.get("type") != "service_account":
        raise ConfigurationError(
            f"{KEY_SETTING} is not a service-account key (missing: "
            f"{', '.join(missing) or 'type service_account'}).",
            hint="Use the JSON key of a service account (IAM & Admin > Service accounts > Keys).",
        )
    return info


_SHARED: dict[tuple[str, int, str, str], PubSubClient] = {}
_SHARED_LOCK = threading.Lock()


class PubSubClient:
    """The platform's Pub/Sub subscriptions: create, read, delete, pull and acknowledge."""

    def __init__(
        self,
        *,
        settings: Settings,
        key: dict[str, Any],
        record: Callable[[CallRecord], None] | None = None,
    ) -> None:
        info = dict(key)
        # The token endpoint comes from settings (the sandbox in tests and the demo).
        info["token_uri"] = settings.google_token_uri
        self.service_account_email: str = info["client_email"]
        self.project: str = info["project_id"]
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=[PUBSUB_SCOPE]
        )
        self._gateway = Gateway(settings=settings, credentials=credentials, record=record)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, record: Callable[[CallRecord], None] | None = None
    ) -> PubSubClient | None:
        """The client of the platform's service account; None when notifications are off
        (no key configured). A key that is not one raises ConfigurationError."""
        path = settings.events_service_account_file
        if not path:
            return None
        if record is not None:
            return cls(settings=settings, key=read_platform_key(path), record=record)
        # One client per key file (and its content) per process: its access token lives for an
        # hour, so pulling every few seconds does not ask Google for a new one each time.
        try:
            stamp = (
                path,
                os.stat(path).st_mtime_ns,
                settings.google_token_uri,
                settings.api_root("pubsub"),
            )
        except OSError:
            stamp = None  # read_platform_key says what is wrong with it
        with _SHARED_LOCK:
            client = _SHARED.get(stamp) if stamp else None
            if client is None:
                client = cls(settings=settings, key=read_platform_key(path))
                if stamp:
                    _SHARED.clear()  # a rotated key replaces the old one
                    _SHARED[stamp] = client
            return client

    def subscription_path(self, name: str) -> str:
        """The full name of subscription `name` in the platform's project."""
        if name.startswith("projects/"):
            return name
        return f"projects/{self.project}/subscriptions/{name}"

    def create_subscription(
        self,
        name: str,
        *,
        topic: str,
        push_endpoint: str | None = None,
        audience: str | None = None,
        ack_deadline_seconds: int = ACK_DEADLINE_SECONDS,
    ) -> dict[str, Any]:
        """Subscribe to `topic`: pushed to `push_endpoint` with an OIDC token of the platform's
        service account for `audience`, or pulled when no endpoint is given."""
        body: dict[str, Any] = {"topic": topic, "ackDeadlineSeconds": ack_deadline_seconds}
        if push_endpoint:
            body["pushConfig"] = {
                "pushEndpoint": push_endpoint,
                "oidcToken": {
                    "serviceAccountEmail": self.service_account_email,
                    "audience": audience or push_endpoint,
                },
            }
        path = self.subscription_path(name)
        return dict(
            self._gateway.call(
                "pubsub.projects.subscriptions.create",
                lambda svc: svc.projects().subscriptions().create(name=path, body=body),
                api="pubsub",
            )
        )

    def get_subscription(self, name: str) -> dict[str, Any] | None:
        """The subscription as Pub/Sub holds it; None when it does not exist."""
        path = self.subscription_path(name)
        try:
            return dict(
                self._gateway.call(
                    "pubsub.projects.subscriptions.get",
                    lambda svc: svc.projects().subscriptions().get(subscription=path),
                    api="pubsub",
                )
            )
        except PermanentGoogleError as exc:
            if exc.status == 404:
                return None
            raise

    def delete_subscription(self, name: str) -> bool:
        """Delete the subscription; False when it did not exist."""
        path = self.subscription_path(name)
        try:
            self._gateway.call(
                "pubsub.projects.subscriptions.delete",
                lambda svc: svc.projects().subscriptions().delete(subscription=path),
                api="pubsub",
            )
        except PermanentGoogleError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def pull(self, name: str, *, max_messages: int = PULL_BATCH) -> list[dict[str, Any]]:
        """Up to `max_messages` messages, each `{"ackId", "message"}`; [] when none wait."""
        path = self.subscription_path(name)
        answer = self._gateway.call(
            "pubsub.projects.subscriptions.pull",
            lambda svc: (
                svc.projects()
                .subscriptions()
                .pull(subscription=path, body={"maxMessages": max_messages})
            ),
            api="pubsub",
        )
        return list((answer or {}).get("receivedMessages") or [])

    def acknowledge(self, name: str, ack_ids: list[str]) -> None:
        """Tell Pub/Sub these messages are stored: it stops delivering them."""
        if not ack_ids:
            return
        path = self.subscription_path(name)
        self._gateway.call(
            "pubsub.projects.subscriptions.acknowledge",
            lambda svc: (
                svc.projects()
                .subscriptions()
                .acknowledge(subscription=path, body={"ackIds": list(ack_ids)})
            ),
            api="pubsub",
        )
