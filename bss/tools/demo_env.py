"""Where a running `bss demo` is, for `bss` commands run from another shell in its directory.

The demo writes `BSS_HOME/demo.env` (its sandbox, Redis, public URL and the path of the platform's
service-account key; no secrets) while it runs and removes it when it stops; every other `bss`
command reads it for what the environment does not set. Kept apart from the demo itself so that
reading it costs a command nothing.
"""

from __future__ import annotations

from pathlib import Path

from dotenv import load_dotenv

DEMO_ENV_FILE = "demo.env"
SHARED = (
    "GOOGLE_SANDBOX_URL",
    "REDIS_URL",
    "BSS_PUBLIC_BASE_URLS",
    "BSS_WEBHOOK_ALLOWED_NETWORKS",
    "BSS_EVENTS_SERVICE_ACCOUNT_FILE",  # where the key is, not the key
)


def write_demo_env(home: Path, env: dict[str, str]) -> Path:
    """Write what another shell needs of the demo's settings `env`."""
    path = home / DEMO_ENV_FILE
    lines = ["# Written by `bss demo` while it runs; removed when it stops.\n"]
    lines += [f"{k}={env[k]}\n" for k in SHARED if env.get(k)]
    path.write_text("".join(lines))
    return path


def load_demo_env(home: Path) -> bool:
    """Settings of a demo running from this directory, for what the environment does not set."""
    path = home / DEMO_ENV_FILE
    return path.exists() and load_dotenv(path, override=False)
