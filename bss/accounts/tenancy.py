"""Distributors (the tenants), their API keys, and the scope a reader sees."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from bss.crypto import hash_api_key, new_api_key
from bss.errors import NotFound, ValidationFailed
from bss.models import ApiKey, Distributor, saved_id, utcnow

# A scope is a distributor's id (its own data only) or ALL (a platform operator sees every one).
ALL = None


def slugify(name: str) -> str:
    """A URL-safe short name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100]


def create_distributor(session: Session, *, name: str, slug: str | None = None) -> Distributor:
    """A new distributor; its slug must be unused."""
    slug = slug or slugify(name)
    if not slug:
        raise ValidationFailed("A distributor needs a name with letters or digits.")
    if session.exec(select(Distributor).where(Distributor.slug == slug)).first():
        raise ValidationFailed(f"A distributor with slug {slug!r} exists already.")
    distributor = Distributor(name=name, slug=slug)
    session.add(distributor)
    session.flush()
    return distributor


def distributor_by_slug(session: Session, slug: str) -> Distributor:
    """The distributor called `slug`, or NotFound."""
    found = session.exec(select(Distributor).where(Distributor.slug == slug)).first()
    if found is None:
        raise NotFound(f"No distributor {slug!r}.")
    return found


def create_api_key(session: Session, *, distributor: Distributor, label: str = "") -> str:
    """A new API key for `distributor`: returns the key itself, which is never stored."""
    key = new_api_key()
    session.add(
        ApiKey(
            distributor_id=saved_id(distributor),
            label=label,
            prefix=key[:12],
            key_hash=hash_api_key(key),
        )
    )
    session.flush()
    return key


def revoke_api_keys(session: Session, *, distributor: Distributor, label: str) -> int:
    """Revoke the distributor's live keys labelled `label`; returns how many."""
    keys = session.exec(
        select(ApiKey).where(
            ApiKey.distributor_id == distributor.id,
            ApiKey.label == label,
            col(ApiKey.revoked_at).is_(None),
        )
    ).all()
    for k in keys:
        k.revoked_at = utcnow()
        session.add(k)
    return len(keys)


def list_api_keys(
    session: Session, *, distributor: Distributor, include_revoked: bool = True
) -> list[ApiKey]:
    """The distributor's API keys, newest first (only hashes: keys themselves are never stored)."""
    query = select(ApiKey).where(ApiKey.distributor_id == distributor.id)
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    newest_first = (col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
    return list(session.exec(query.order_by(*newest_first)).all())


def revoke_api_key(session: Session, *, distributor: Distributor, key_id: int | str) -> ApiKey:
    """Revoke one of the distributor's keys, by id or by its shown prefix; NotFound otherwise.

    Revoking a key that is already revoked changes nothing (and is not an error).
    """
    query = select(ApiKey).where(ApiKey.distributor_id == distributor.id)
    if isinstance(key_id, int) or str(key_id).isdigit():
        query = query.where(ApiKey.id == int(key_id))
    else:
        query = query.where(ApiKey.prefix == str(key_id))
    matches = session.exec(query).all()
    if len(matches) != 1:
        raise NotFound(f"No API key {key_id!r} for distributor {distributor.slug!r}.")
    key = matches[0]
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.flush()
    return key
