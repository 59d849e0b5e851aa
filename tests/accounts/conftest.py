"""The `bss` command run from a shell, against the tests' database (tenant administration)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bss.settings import get_settings
from bss.tools.cli import main


@pytest.fixture
def bss(settings, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BSS_HOME", str(settings.home))
    monkeypatch.setenv("BSS_SECRET_KEYS", settings.secret_keys)
    monkeypatch.setenv("BSS_PUBLIC_BASE_URLS", "https://portal.example")
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input)

    yield run
    get_settings.cache_clear()
