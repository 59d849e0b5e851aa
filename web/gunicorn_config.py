"""gunicorn's settings for the web app (`gunicorn -c python:web.gunicorn_config web.wsgi:app`).

One process per core, as the CPU of a request is Python's and one process runs one thread of
Python at a time; a few threads each, for the time a request waits on the database or the broker.
`WEB_CONCURRENCY` (gunicorn's own variable) and `BSS_WEB_THREADS` override them; command-line
options override both.
"""

from __future__ import annotations

import os


def _count(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


workers = _count("WEB_CONCURRENCY", os.cpu_count() or 1)
threads = _count("BSS_WEB_THREADS", 4)
