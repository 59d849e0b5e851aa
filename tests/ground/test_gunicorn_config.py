"""The web app's process count follows the machine's cores unless the operator chooses."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys


def _config(monkeypatch, **env):
    for name in ("WEB_CONCURRENCY", "BSS_WEB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import web.gunicorn_config as config

    return importlib.reload(config)


def test_a_process_per_core_and_four_threads_unless_told(monkeypatch):
    config = _config(monkeypatch)
    assert (config.workers, config.threads) == (os.cpu_count() or 1, 4)
    config = _config(monkeypatch, WEB_CONCURRENCY="6", BSS_WEB_THREADS="2")
    assert (config.workers, config.threads) == (6, 2)


def test_gunicorn_reads_it():
    # gunicorn's own parser, as `gunicorn -c python:web.gunicorn_config` runs it
    code = (
        "from gunicorn.app.wsgiapp import WSGIApplication;"
        "import sys; sys.argv=['gunicorn','-c','python:web.gunicorn_config','web.wsgi:app'];"
        "app=WSGIApplication(); print(app.cfg.workers, app.cfg.threads)"
    )
    env = {**os.environ, "WEB_CONCURRENCY": "3", "BSS_WEB_THREADS": "5"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["3", "5"], out.stderr
