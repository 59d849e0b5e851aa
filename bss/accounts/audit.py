"""Writing the audit log."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bss.models import AuditEntry

# Keys whose values never go into the log, whatever a caller passes.
SECRET_KEYS = {
    "client_secret",
    "password",
    "refresh_token",
    "access_token",
    "private_key",
    "secret",
    "api_key",
    "key",
}


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    distributor_id: int | None = None,
    source_ip: str | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an entry (committed with the caller's transaction, so the log and the change agree)."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        target=target,
        distributor_id=distributor_id,
        source_ip=source_ip,
        details={k: ("[redacted]" if k in SECRET_KEYS else v) for k, v in details.items()},
    )
    session.add(entry)
    return entry
