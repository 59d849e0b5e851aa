"""Secrets at rest: nothing readable in the raw database file, and `bss keys rotate`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bss import migrate
from bss.crypto import Vault, generate_key
from bss.db import get_engine
from bss.tools import encrypted_columns
from tests.support.portal import (
    PASSWORD,
    Portal,
    authenticated_instance,
    make_account,
    portal_settings,
    sandbox_post,
)
from web import create_app


@pytest.fixture
def own_database(tmp_path: Path) -> tuple[str, Path]:
    """A database file of this test's own, so every byte in it comes from this test."""
    path = tmp_path / "secrets.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    return url, path


def raw_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log, as a thief copying them would get them."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def all_encrypted_values(url: str) -> list[str]:
    values = []
    with get_engine(url).connect() as conn:
        for table, column in encrypted_columns():
            rows = conn.execute(text(f'SELECT "{column}" FROM "{table.name}"'))  # noqa: S608
            values += [r[0] for r in rows if r[0]]
    return values


def test_the_raw_database_file_holds_no_secret(tmp_path, own_database, redis_url, sandbox):
    url, path = own_database
    keys = generate_key()
    from tests.support.portal import set_up_google

    google = set_up_google(sandbox, "http://localhost")
    settings = portal_settings(tmp_path, url, keys, redis_url, google, "http://localhost")
    app = create_app(settings)
    # Given a user with a password, an OAuth instance authenticated through Google, a
    # service-account instance with its key, and a signed-in session
    account = make_account(url)
    portal = Portal(app.test_client()).sign_in(account)
    instance_id = authenticated_instance(portal, google)
    portal.post(f"/portal/instances/{instance_id}/check")
    resp = portal.post("/portal/instances/new", {"name": "sa", "mode": "service_account"})
    sa_id = int(resp.location.rsplit("/", 1)[1])
    key = sandbox_post(google.sandbox, "/_sandbox/service-accounts", {"project": google.project})
    portal.post(
        f"/portal/instances/{sa_id}/service-account",
        {
            "delegated_admin": google.admin,
            "key_file": (io.BytesIO(json.dumps(key).encode()), "k.json"),
        },
        content_type="multipart/form-data",
    )
    auth_url = portal.start_authentication(instance_id)  # a state in flight, with its verifier
    vault = Vault([keys])
    with get_engine(url).connect() as conn:
        refresh_token = vault.decrypt(
            conn.execute(
                text("SELECT refresh_token_enc FROM instance WHERE id=:i"), {"i": instance_id}
            ).scalar()
        )
        verifiers = [
            vault.decrypt(v)
            for (v,) in conn.execute(text("SELECT code_verifier_enc FROM oauth_state"))
        ]
    cookie = portal.client.get_cookie("bss_session").value
    session_data = app.session_interface.get_signing_serializer(app).loads(cookie)
    get_engine(url).dispose()
    secrets = {
        "password": PASSWORD,
        "client secret": google.client_secret,
        "refresh token": refresh_token,
        "private key": key["private_key"].splitlines()[1],
        "session id": session_data["sid"],
        "oauth state": auth_url.split("state=", 1)[1].split("&", 1)[0],
        **{f"code verifier {i}": v for i, v in enumerate(verifiers)},
    }
    assert verifiers and all(secrets.values())
    # When the database file is read as raw bytes
    raw = raw_bytes(path)
    # Then none of the secrets is in it
    found = [name for name, secret in secrets.items() if secret.encode() in raw]
    assert found == []
    # (and the check can find one: the non-secret Client ID is there)
    assert google.client_id.encode() in raw


def test_keys_rotate_reencrypts_every_secret(tmp_path, own_database, redis_url, sandbox):
    url, _ = own_database
    old = generate_key()
    from tests.support.portal import set_up_google

    google = set_up_google(sandbox, "http://localhost")
    app = create_app(portal_settings(tmp_path, url, old, redis_url, google, "http://localhost"))
    portal = Portal(app.test_client()).sign_in(make_account(url))
    authenticated_instance(portal, google)
    before = all_encrypted_values(url)
    plain = sorted(Vault([old]).decrypt(v) for v in before)
    assert len(before) >= 3
    # When the operator puts a new key first and runs `bss keys rotate`
    new = generate_key()
    env = dict(os.environ, DATABASE_URL=url, BSS_SECRET_KEYS=f"{new},{old}", BSS_HOME=str(tmp_path))
    run = subprocess.run(
        [sys.executable, "-m", "bss", "keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "instance.client_secret_enc: 1 re-encrypted" in run.stdout
    # Then the new key alone decrypts every secret, to the same values
    after = all_encrypted_values(url)
    assert sorted(Vault([new]).decrypt(v) for v in after) == plain
    assert set(after).isdisjoint(before)
    # And the old key alone no longer decrypts any
    from bss.errors import ConfigurationError

    for value in after:
        with pytest.raises(ConfigurationError):
            Vault([old]).decrypt(value)
