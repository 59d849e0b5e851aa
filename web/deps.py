"""Per-request resources: the database session, the settings, the caller's distributor."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request
from sqlmodel import Session, select

from bss.crypto import hash_api_key
from bss.db import get_engine
from bss.errors import Unauthorized
from bss.models import ApiKey, Distributor, utcnow
from bss.settings import Settings

# How often an API key's last use is written down.
LAST_USED_PRECISION = timedelta(minutes=1)


def settings() -> Settings:
    return current_app.config["BSS_SETTINGS"]


def db() -> Session:
    """This request's database session, closed at teardown."""
    if "db" not in g:
        g.db = Session(get_engine(settings().database_url), expire_on_commit=False)
    return g.db


def api_distributor() -> Distributor:
    """The distributor whose API key authorizes this request."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Send your API key as `Authorization: Bearer <key>`.")
    session = db()
    api_key = session.exec(
        select(ApiKey).where(ApiKey.key_hash == hash_api_key(key.strip()))
    ).first()
    if api_key is None or api_key.revoked_at is not None:
        raise Unauthorized("This API key is not valid (unknown or revoked).")
    distributor = session.get(Distributor, api_key.distributor_id)
    if distributor is None:
        raise Unauthorized("This API key is not valid.")
    now = utcnow()
    # "Last used" is shown to the minute: writing it on every request would make each API call
    # a write transaction of its own (SQLite's one writer at a time, the busiest row on
    # PostgreSQL).
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_PRECISION:
        api_key.last_used_at = now
        session.add(api_key)
        session.commit()
    return distributor
