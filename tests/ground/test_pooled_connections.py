"""A server database's pooled connections (bss.db.get_engine): one that sat idle is pinged
before use and replaced if the server dropped it; one in use a moment ago is not pinged."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

import bss.db
from bss.db import get_engine
from tests.support.databases import new_database


@pytest.fixture
def server_url(tmp_path, monkeypatch) -> Iterator[str]:
    with new_database(tmp_path / "unused.db", "bss_pool") as url:
        if url.startswith("sqlite"):
            pytest.skip("a database server's connections: set BSS_TEST_DATABASE_URL")
        monkeypatch.setattr(bss.db, "PING_AFTER_IDLE_S", 0.3)
        yield url


def _backend(url: str) -> int:
    with get_engine(url).connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _drop(url: str, pid: int) -> None:
    """What a server restart or an idle timeout does to the pool's connection."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()
    time.sleep(0.1)  # the backend is gone


def test_a_connection_dropped_while_idle_is_replaced_before_use(server_url):
    dropped = _backend(server_url)
    _drop(server_url, dropped)
    time.sleep(0.4)  # idle for longer than PING_AFTER_IDLE_S

    # the transaction runs on a new connection: the caller sees no error
    assert _backend(server_url) != dropped


def test_a_connection_used_a_moment_ago_is_not_pinged(server_url):
    dropped = _backend(server_url)
    _drop(server_url, dropped)

    # No ping within the threshold (the round trip it saves on every transaction): the
    # statement meets the dropped connection, and the pool lets that connection go.
    with pytest.raises(OperationalError):
        _backend(server_url)
    assert _backend(server_url) != dropped
