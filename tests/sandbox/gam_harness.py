"""Run GAM7 (the reseller admins' CLI, PyPI ``gam7``) against the sandbox, unmodified.

GAM lives in a virtual environment of its own, outside the repository: ``BSS_GAM_VENV``, by
default ``$XDG_CACHE_HOME/bss/gam-venv`` (``~/.cache/bss/gam-venv``). Make it with::

    python3 -m venv ~/.cache/bss/gam-venv && ~/.cache/bss/gam-venv/bin/pip install gam7

Each ``Gam`` has a config directory of its own (``GAMCFGDIR``) and runs ``gam`` as a subprocess
with ``gam_shim/`` on its ``PYTHONPATH``: that ``sitecustomize`` sends every call to a Google
host name to the sandbox, keeping path, query and the host name (in ``Host``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import requests

from .helpers import Sandbox, World, consent

SHIM = Path(__file__).resolve().parent / "gam_shim"
AUTH = "https://www.googleapis.com/auth/"
#: What `gam oauth create` asks for the commands we run: GAM always adds the two userinfo
#: scopes (not `openid`) and expects an id_token for them.
GAM_SCOPES = [
    AUTH + "userinfo.email",
    AUTH + "userinfo.profile",
    AUTH + "apps.order",
    AUTH + "apps.licensing",
    AUTH + "admin.directory.user",
    AUTH + "admin.directory.customer",
    AUTH + "admin.directory.group",
    AUTH + "admin.directory.domain",
    AUTH + "admin.directory.orgunit",
]
#: GAM's spelling of "refresh before first use" in oauth2.txt.
REFRESH_EXPIRY = "1970-01-01T00:00:01Z"


def gam_venv() -> Path:
    """Where GAM's virtual environment is (it may not exist)."""
    if os.environ.get("BSS_GAM_VENV"):
        return Path(os.environ["BSS_GAM_VENV"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bss" / "gam-venv"


def gam_executable() -> Path | None:
    exe = gam_venv() / "bin" / "gam"
    return exe if exe.exists() else None


class Gam:
    """One GAM installation's configuration, pointed at the sandbox."""

    def __init__(self, executable: Path, home: Path, origin: str) -> None:
        self.executable = executable
        self.home = home
        self.config_dir = home / "gam"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.origin = origin

    def write_config(self, *, domain: str, admin: str, **settings: str) -> None:
        """gam.cfg for a headless run: no update check, no browser, no URL shortener, no cache."""
        values = {
            "domain": domain,
            "admin_email": admin,
            "customer_id": "my_customer",
            "no_update_check": "true",
            "no_browser": "true",
            "no_short_urls": "true",
            "no_cache": "true",
            "cache_discovery_only": "false",
            "show_gettings": "false",
            "timezone": "utc",
            "api_calls_tries_limit": "3",
            "drive_dir": str(self.home),
            **settings,
        }
        lines = ["[DEFAULT]"] + [f"{k} = {v}" for k, v in values.items()]
        (self.config_dir / "gam.cfg").write_text("\n".join(lines) + "\n")

    def write_client_secrets(self, client: dict) -> None:
        """client_secrets.json: a Desktop client's JSON as the Cloud console downloads it."""
        (self.config_dir / "client_secrets.json").write_text(json.dumps(client))

    def write_oauth2_txt(
        self, *, client: dict, refresh_token: str, admin: str, domain: str
    ) -> None:
        """oauth2.txt as `gam oauth create` writes it, with the access token already expired."""
        body = {
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "refresh_token": refresh_token,
            "token_uri": "https://oauth2.googleapis.com/token",
            "scopes": sorted(GAM_SCOPES),
            "token": "expired",
            "token_expiry": REFRESH_EXPIRY,
            "id_token": "",
            "decoded_id_token": {
                "iss": "https://accounts.google.com",
                "email": admin,
                "email_verified": True,
                "hd": domain,
            },
        }
        (self.config_dir / "oauth2.txt").write_text(json.dumps(body, indent=2))

    def write_service_account(self, key: dict) -> None:
        (self.config_dir / "oauth2service.json").write_text(json.dumps(key))

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "GAMCFGDIR": str(self.config_dir),
            "PYTHONPATH": str(SHIM),
            "BSS_SANDBOX_ORIGIN": self.origin,
            # no __pycache__ beside the shim in the working tree
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(
            [str(self.executable), *args],
            cwd=self.home,
            env=self.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kwargs,
        )

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`gam ARGS...`; stdout and stderr together in .stdout."""
        return subprocess.run(
            [str(self.executable), *args],
            cwd=self.home,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )


def seed_gam(sandbox: Sandbox, home: Path, executable: Path) -> tuple[Gam, World]:
    """Given a reseller whose admin set GAM up: a Desktop client, consent, a service account."""
    world = World.seed(sandbox)
    made = sandbox.post(
        "/_sandbox/clients", {"project": world.project, "name": "GAM", "type": "installed"}
    )
    client = made["installed"]
    minted = sandbox.tokens(client["client_id"], world.admin, GAM_SCOPES)
    gam = Gam(executable, home, sandbox.url)
    gam.write_config(domain=world.reseller, admin=world.admin)
    gam.write_client_secrets(made)
    gam.write_oauth2_txt(
        client=client,
        refresh_token=minted["refresh_token"],
        admin=world.admin,
        domain=world.reseller,
    )
    key = sandbox.post("/_sandbox/service-accounts", {"project": world.project})
    gam.write_service_account(key)
    return gam, world


def oauth_create(gam: Gam, sandbox: Sandbox, admin: str, scopes: list[str]) -> str:
    """`gam oauth create`, with a browser clicking Allow on the consent page; GAM's output."""
    wanted = ",".join(s for s in scopes if s.startswith(AUTH) and "userinfo" not in s)
    proc = gam.popen("oauth", "create", "admin", admin, "scopes", wanted)
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.strip().startswith("https://accounts.google.com/"):
                break
        else:
            raise AssertionError("GAM printed no authorization URL:\n" + "".join(seen))
        url = line.strip().replace("https://accounts.google.com", sandbox.url, 1)
        location = consent(sandbox.url, url, account=admin)
        # The browser lands on GAM's loopback server, which hands the code to GAM
        requests.get(location, timeout=30)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return "".join(seen) + rest
