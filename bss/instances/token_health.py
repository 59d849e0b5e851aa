"""What the workers' token refreshes tell an instance's health: when its access token was last
refreshed and until when it works.

Workers refresh through the shared token cache (`bss.gateway.TokenCache`), once per instance per
token lifetime; the cache tells its `on_refresh` hook, and this records it on the instance, so
that the portal and the dashboard show what the workers obtained, not only what Check did.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlmodel import Session

from bss.db import session_scope
from bss.models import Instance, InstanceHealth, utcnow


def record_token_refresh(
    session: Session, instance_id: int, *, expires_at: datetime | None
) -> None:
    """Note that the instance's access token was refreshed just now, valid until `expires_at`
    (UTC; google-auth's expiries are naive). The last Check's results are left as they were."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        return
    instance.last_refresh_at = utcnow()
    session.add(instance)
    health = session.get(InstanceHealth, instance_id) or InstanceHealth(instance_id=instance_id)
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    health.access_token_expires_at = expires_at
    session.add(health)


def token_refresh_recorder(database_url: str) -> Callable[[int, datetime | None], None]:
    """A TokenCache `on_refresh` hook: each refresh recorded in a transaction of its own."""

    def record(instance_id: int, expires_at: datetime | None) -> None:
        with session_scope(database_url) as session:
            record_token_refresh(session, instance_id, expires_at=expires_at)

    return record
