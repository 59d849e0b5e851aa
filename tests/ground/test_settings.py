from __future__ import annotations

from bss.settings import Settings


def test_every_google_url_defaults_to_google(tmp_path):
    s = Settings(BSS_HOME=tmp_path)
    assert s.google_token_uri == "https://oauth2.googleapis.com/token"
    assert s.google_auth_uri == "https://accounts.google.com/o/oauth2/v2/auth"
    assert s.api_root("reseller") == "https://reseller.googleapis.com/"
    assert s.api_root("admin") == "https://admin.googleapis.com/"
    assert s.database_url == f"sqlite:///{tmp_path / 'bss.db'}"


def test_the_sandbox_url_points_every_google_endpoint_at_one_origin(tmp_path):
    s = Settings(BSS_HOME=tmp_path, GOOGLE_SANDBOX_URL="http://127.0.0.1:8765/")
    assert s.google_token_uri == "http://127.0.0.1:8765/token"
    assert s.google_revoke_uri == "http://127.0.0.1:8765/revoke"
    for api in ("reseller", "admin", "licensing", "gmail"):
        assert s.api_root(api) == "http://127.0.0.1:8765/"


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/bss")
    monkeypatch.setenv("BSS_PUBLIC_BASE_URLS", "https://a.example/, https://b.example")
    s = Settings(BSS_HOME=tmp_path)
    assert s.database_url == "postgresql+psycopg://db/bss"
    assert s.base_urls == ["https://a.example", "https://b.example"]


def test_unrelated_environment_variables_do_not_leak_into_settings(monkeypatch):
    # HOME is set in every shell; it must not be taken for BSS_HOME.
    monkeypatch.setenv("HOME", "/somewhere/else")
    monkeypatch.delenv("BSS_HOME", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    s = Settings()
    assert str(s.home) == "var"
    assert s.database_url == "sqlite:///var/bss.db"


def test_sqlite_commits_are_not_synced_one_by_one_unless_asked(tmp_path, monkeypatch):
    from bss.db import get_engine
    from bss.settings import get_settings

    # PRAGMA synchronous: 1 is NORMAL (the default here), 2 is FULL
    for wanted, level in (("", 1), ("full", 2)):
        if wanted:
            monkeypatch.setenv("BSS_SQLITE_SYNCHRONOUS", wanted)
        get_settings.cache_clear()
        engine = get_engine(f"sqlite:///{tmp_path}/{wanted or 'default'}.db")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
            # Sorts in memory (2), not in temporary files; the file read through a memory map
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() > 0
    get_settings.cache_clear()
