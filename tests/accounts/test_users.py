"""Portal users: password storage, sign-in answers, sessions that end."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from bss.accounts import (
    create_distributor,
    create_user,
    end_session,
    session_user,
    set_password,
    sign_in_with_google,
    sign_in_with_password,
    start_session,
)
from bss.db import session_scope
from bss.errors import Unauthorized, ValidationFailed
from bss.models import UserSession, utcnow

PASSWORD = "a long enough passphrase"


def new_admin(s, **kw):
    d = create_distributor(s, name=f"D {uuid.uuid4().hex[:8]}")
    email = kw.pop("email", f"u-{uuid.uuid4().hex[:8]}@x.example")
    return create_user(s, email=email, role="distributor_admin", distributor=d, **kw)


def test_passwords_are_stored_as_argon2id_hashes_only(database_url):
    with session_scope(database_url) as s:
        user = new_admin(s, password=PASSWORD)
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert sign_in_with_password(s, email=user.email.upper(), password=PASSWORD).id == user.id
        with pytest.raises(Unauthorized, match="Wrong e-mail address or password"):
            sign_in_with_password(s, email=user.email, password=PASSWORD + "!")


def test_bad_users_are_refused_with_the_reason(database_url):
    with session_scope(database_url) as s:
        with pytest.raises(ValidationFailed, match="at least 12"):
            new_admin(s, password="short")
        with pytest.raises(ValidationFailed, match="not an e-mail address"):
            new_admin(s, email="not-an-address", password=PASSWORD)
        with pytest.raises(ValidationFailed, match="needs a distributor"):
            create_user(s, email="x@y.example", role="distributor_admin", password=PASSWORD)
        user = new_admin(s, password=PASSWORD)
        with pytest.raises(ValidationFailed, match="exists already"):
            create_user(s, email=user.email, role="operator", password=PASSWORD)


def test_sessions_end_when_they_expire_or_the_password_changes(database_url):
    with session_scope(database_url) as s:
        user = new_admin(s, password=PASSWORD)
        first = start_session(s, user, hours=1)
        second = start_session(s, user, hours=1)
        assert session_user(s, first).id == user.id
        end_session(s, first)
        assert session_user(s, first) is None and session_user(s, second).id == user.id
        row = s.exec(select(UserSession).where(UserSession.user_id == user.id)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
        s.flush()
        assert session_user(s, second) is None
        third = start_session(s, user, hours=1)
        set_password(s, user, PASSWORD + " changed")
        assert session_user(s, third) is None


def test_google_identities_must_be_verified_and_known(database_url):
    with session_scope(database_url) as s:
        user = new_admin(s)
        claims = {"sub": "g-" + uuid.uuid4().hex, "email": user.email, "email_verified": True}
        with pytest.raises(Unauthorized, match="verified"):
            sign_in_with_google(s, claims=claims | {"email_verified": False})
        with pytest.raises(Unauthorized, match="no portal account"):
            sign_in_with_google(s, claims=claims | {"email": "stranger@x.example", "sub": "other"})
        assert sign_in_with_google(s, claims=claims).google_sub == claims["sub"]
        # Once linked, another Google account with the same address is refused
        with pytest.raises(Unauthorized, match="linked to another Google account"):
            sign_in_with_google(s, claims=claims | {"sub": "g-someone-else"})
