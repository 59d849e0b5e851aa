"""`bss demo`: the whole service on embedded defaults, with a sandbox Google and demo data."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import click
import requests
from sqlmodel import Session, select

from bss import migrate
from bss.accounts import (
    create_api_key,
    create_distributor,
    create_user,
    distributor_by_slug,
    google_signin,
    revoke_api_keys,
    set_password,
    user_by_email,
)
from bss.broker import describe_broker
from bss.crypto import hash_api_key, vault_from_settings
from bss.db import session_scope
from bss.errors import NotFound
from bss.gateway import REQUIRED_SCOPES
from bss.instances import create_instance, get_instance, redirect_uris, store_oauth_grant
from bss.jobs import resume_waiting_jobs
from bss.models import ApiKey, Distributor, InstanceStatus, UserRole, saved_id
from bss.settings import Settings
from bss.tools.demo_env import DEMO_ENV_FILE, write_demo_env
from bss.tools.demo_events import platform_key, register_demo_instance
from bss.tools.demo_mail import seed_demo_mail
from bss.tools.processes import Supervisor, can_bind, port_in_use, wait_http

DEMO_SLUG = "demo"
DEMO_INSTANCE = "demo"
DEMO_RESELLER = "demo-reseller.example"
DEMO_ADMIN = f"admin@{DEMO_RESELLER}"
DEMO_OPERATOR = "operator@platform.example"
API_KEY_FILE = "demo-api-key"  # the demo's API key, encrypted with the secret keys
SMTP_CERT_FILE = "sandbox-smtp.pem"  # the sandbox SMTP's self-signed certificate, to trust
# Processes the demo starts again when they exit (more than 5 restarts a minute stop it)
RESTARTED = ("worker", "scheduler")


@dataclass
class DemoInfo:
    portal_url: str
    jobs_url: str
    sandbox_url: str
    api_key: str
    portal_email: str = DEMO_ADMIN
    portal_password: str = ""
    operator_password: str = ""


def _sandbox_client(sandbox: str, name: str, redirect: list[str]) -> dict[str, str]:
    """Make sure the sandbox holds the demo reseller and the OAuth client `name` with these
    redirect URIs; return its id and secret."""
    state = requests.get(f"{sandbox}/_sandbox/state", timeout=10).json()
    if not any(r.get("domain") == DEMO_RESELLER for r in _items(state.get("resellers"))):
        _post(sandbox, "/_sandbox/resellers", {"domain": DEMO_RESELLER, "admin_email": DEMO_ADMIN})
    for client in _items(state.get("clients")):
        if client.get("name") == name and client.get("client_secret"):
            requests.patch(
                f"{sandbox}/_sandbox/clients/{client['client_id']}",
                json={"redirect_uris": redirect},
                timeout=10,
            )
            return {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    project = _post(sandbox, "/_sandbox/projects", {"reseller": DEMO_RESELLER})["project_id"]
    web = _post(
        sandbox, "/_sandbox/clients", {"project": project, "name": name, "redirect_uris": redirect}
    )["web"]
    return {"client_id": web["client_id"], "client_secret": web["client_secret"]}


def _portal_user(
    s: Session, *, email: str, role: UserRole, name: str, distributor: Distributor | None
) -> str:
    """A demo portal user, with a new password each start: returned to be shown once."""
    password = secrets.token_urlsafe(12)
    try:
        user = user_by_email(s, email)
        set_password(s, user, password)
    except NotFound:
        create_user(
            s, email=email, role=role, distributor=distributor, password=password, name=name
        )
    return password


def _items(value: dict | Iterable[object] | None) -> list[dict]:
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, dict)]
    return [v for v in value or [] if isinstance(v, dict)]


def _post(sandbox: str, path: str, body: dict) -> dict:
    resp = requests.post(sandbox + path, json=body, timeout=10)
    resp.raise_for_status()
    return resp.json()


def _refresh_works(settings: Settings, client: dict[str, str], refresh_token: str) -> bool:
    resp = requests.post(
        settings.google_token_uri,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
        timeout=10,
    )
    return resp.status_code == 200


def _demo_api_key(s: Session, settings: Settings, distributor: Distributor) -> str:
    """The demo's API key, the same at every start: kept encrypted under BSS_HOME, and replaced
    (the old one revoked) only when it no longer works."""
    vault = vault_from_settings(settings)
    kept = Path(settings.home) / API_KEY_FILE
    if kept.exists():
        key = vault.decrypt(kept.read_text().strip())
        row = s.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key))).first()
        if row is not None and row.distributor_id == distributor.id and row.revoked_at is None:
            return key
    revoke_api_keys(s, distributor=distributor, label="demo")
    key = create_api_key(s, distributor=distributor, label="demo")
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(vault.encrypt(key))
    kept.chmod(0o600)
    return key


def seed(settings: Settings, sandbox: str) -> DemoInfo:
    """The demo distributor, its authenticated instance and a fresh API key (idempotent)."""
    vault = vault_from_settings(settings)
    client = _sandbox_client(sandbox, "Demo provisioning", redirect_uris(settings.base_urls))
    with session_scope(settings.database_url) as s:
        try:
            distributor = distributor_by_slug(s, DEMO_SLUG)
        except NotFound:
            distributor = create_distributor(s, name="Demo Distributor", slug=DEMO_SLUG)
        try:
            instance = get_instance(s, distributor_id=distributor.id, name=DEMO_INSTANCE)
            instance.client_id = client["client_id"]
            instance.client_secret_enc = vault.encrypt(client["client_secret"])
        except NotFound:
            instance = create_instance(
                s, vault=vault, distributor=distributor, name=DEMO_INSTANCE, **client
            )
        current = instance.refresh_token_enc and vault.decrypt(instance.refresh_token_enc)
        if not (
            instance.status == InstanceStatus.AUTHENTICATED
            and current
            and _refresh_works(settings, client, current)
        ):
            # What Authenticate Instance does in the browser, done through the sandbox's
            # operator API so the demo starts ready.
            grant = _post(
                sandbox,
                "/_sandbox/tokens",
                {"client_id": client["client_id"], "user": DEMO_ADMIN, "scopes": REQUIRED_SCOPES},
            )
            store_oauth_grant(
                s,
                instance,
                vault=vault,
                refresh_token=grant["refresh_token"],
                scopes=grant["scope"].split(),
                authenticated_as=DEMO_ADMIN,
            )
            # Jobs a previous run left waiting for the instance are queued again (the sweep
            # sends their messages).
            resume_waiting_jobs(s, saved_id(instance))
        api_key = _demo_api_key(s, settings, distributor)
        # The demo reseller's admin, so Sign in with Google works for it too.
        password = _portal_user(
            s,
            email=DEMO_ADMIN,
            role=UserRole.DISTRIBUTOR_ADMIN,
            name="Demo Admin",
            distributor=distributor,
        )
        operator_password = _portal_user(
            s, email=DEMO_OPERATOR, role=UserRole.OPERATOR, name="Demo Operator", distributor=None
        )
        seed_demo_mail(
            s, vault, distributor_id=saved_id(distributor), instance_id=saved_id(instance)
        )
    base = settings.base_urls[0]
    return DemoInfo(
        f"{base}/", f"{base}/jobs", sandbox, api_key, DEMO_ADMIN, password, operator_password
    )


def curl_example(base: str, api_key: str) -> str:
    body = (
        '{"instance": "demo", "operation": "customer.create", "params": {'
        '"domain": "acme-widgets.example", "alternate_email": "it@acme.example.net", '
        '"postal_address": {"contact_name": "Ada Admin", "organization_name": "Acme Widgets", '
        '"postal_code": "94043", "country_code": "US"}}}'
    )
    return (
        f"curl -sS -X POST {base}/api/v1/jobs \\\n"
        f"  -H 'Authorization: Bearer {api_key}' \\\n"
        f"  -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-order-1' \\\n"
        f"  -d '{body}'"
    )


def run_demo(settings: Settings, *, port: int, sandbox_port: int, worker_threads: int) -> None:
    """Start redis, the sandbox, web, a worker and the scheduler; seed; wait for Ctrl-C."""
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(log_dir=home / "logs")
    env: dict[str, str] = {"BSS_HOME": str(home)}
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        for p in (port, sandbox_port):
            if _taken(p):
                raise click.ClickException(
                    f"Port {p} is in use: pick another with --port/--sandbox-port."
                )
        if not settings.redis_url:
            redis_port = _free_near(6390)
            env["REDIS_URL"] = sup.start_redis(port=redis_port, data_dir=home / "redis")
        sandbox = settings.google_sandbox_url.rstrip("/")
        if not sandbox:
            sandbox = f"http://127.0.0.1:{sandbox_port}"
            smtp_port = _free_near(sandbox_port + 1)  # Gmail's SMTP, beside the sandbox
            proc = sup.python(
                "sandbox",
                "-m",
                "bss.sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(sandbox_port),
                "--state",
                str(home / "sandbox.json"),
                "--smtp-port",
                str(smtp_port),
                "--smtp-cert",
                str(home / SMTP_CERT_FILE),
            )
            wait_http(f"{sandbox}/_sandbox/state", proc=proc)
            # Senders in SMTP mode reach the sandbox's Gmail SMTP, trusting its certificate.
            env["GOOGLE_SMTP_HOST"] = "127.0.0.1"
            env["GOOGLE_SMTP_PORT"] = str(smtp_port)
            env["GOOGLE_SMTP_CA_FILE"] = str(home / SMTP_CERT_FILE)
        env["GOOGLE_SANDBOX_URL"] = sandbox
        metrics_port = _free_near(9191)
        env.update(  # the workers' Prometheus endpoint (Dramatiq's middleware reads these)
            dramatiq_prom_port=str(metrics_port),
            dramatiq_prom_host="127.0.0.1",
            dramatiq_prom_db=str((home / "prometheus").resolve()),
        )
        env["BSS_PUBLIC_BASE_URLS"] = f"http://127.0.0.1:{port}"
        # Webhooks may go to a receiver tried out on this machine (elsewhere: public only).
        env["BSS_WEBHOOK_ALLOWED_NETWORKS"] = settings.webhook_allowed_networks or "127.0.0.0/8"
        signin = _sandbox_client(
            sandbox, "Portal sign-in", [env["BSS_PUBLIC_BASE_URLS"] + google_signin.CALLBACK_PATH]
        )
        env["GOOGLE_SIGNIN_CLIENT_ID"] = signin["client_id"]
        env["GOOGLE_SIGNIN_CLIENT_SECRET"] = signin["client_secret"]
        # The platform's own Google service account, for the Reseller API's notifications.
        if not settings.events_service_account_file:
            key = platform_key(sandbox, home, reseller=DEMO_RESELLER)
            env["BSS_EVENTS_SERVICE_ACCOUNT_FILE"] = str(key)
        os.environ.update(env)
        settings = Settings()
        migrate.upgrade(settings.database_url)
        info = seed(settings, sandbox)
        web = start_services(sup, port=port, worker_threads=worker_threads)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=web)
        write_demo_env(home, env)
        _print_banner(info, home, metrics_port)
        events = register_demo_instance(settings, distributor=DEMO_SLUG, instance=DEMO_INSTANCE)
        click.echo(f"Google's notifications for {DEMO_SLUG}/{DEMO_INSTANCE}: {events}.\n")
        if settings.broker_url:  # the demo's Redis still holds tokens, limits and heartbeats
            click.echo(f"Broker: {describe_broker(settings)}.\n")
        restarts: list[float] = []
        while not stop.wait(1.0):
            dead = sup.dead()
            fatal = [name for name in dead if name not in RESTARTED]
            now = time.monotonic()
            restarts = [t for t in restarts if t > now - 60] + [now] * len(dead)
            if fatal or len(restarts) > 5:
                why = ", ".join(fatal or dead)
                click.echo(f"Stopped: {why} exited; see {home / 'logs'}.", err=True)
                break
            for name in dead:  # as the compose file's `restart:` does
                sup.restart(name)
                click.echo(f"The {name} process exited; started it again (see {home / 'logs'}).")
    finally:
        click.echo("Stopping…")
        (home / DEMO_ENV_FILE).unlink(missing_ok=True)
        sup.stop_all()


def start_services(
    sup: Supervisor, *, port: int, worker_processes: int = 1, worker_threads: int = 4
) -> subprocess.Popen:
    """The web app (gunicorn), Dramatiq workers and the scheduler; returns the web process."""
    web = sup.python(
        "web",
        "-m",
        "gunicorn",
        "-c",
        "python:web.gunicorn_config",  # a process per core, 4 threads each
        "--bind",
        f"127.0.0.1:{port}",
        "web.wsgi:app",
    )
    sup.python(
        "worker",
        "-m",
        "dramatiq",
        "workers",
        "--processes",
        str(worker_processes),
        "--threads",
        str(worker_threads),
        env=dramatiq_consumer_env(worker_threads),
    )
    sup.python("scheduler", "-m", "bss", "scheduler")
    return web


# Dramatiq reads these from the environment of its worker processes.
PREFETCH, IDLE_POLL_MS = "dramatiq_queue_prefetch", "dramatiq_worker_timeout"


def dramatiq_consumer_env(threads: int) -> dict[str, str]:
    """Dramatiq's consumer settings for fair sharing on Redis (unless set already): with a short
    queue, a worker process that prefetches twice its threads hoards the messages (its consumer,
    which keeps finding some, polls often; an idle one backs off up to a second) while the other
    process's threads idle, and a newcomer's message waits behind the hoard. So: a prefetch of a
    little more than the threads, and an idle consumer that looks again within 100 ms."""
    wanted = {PREFETCH: str(threads + 2), IDLE_POLL_MS: "100"}
    return {k: v for k, v in wanted.items() if k not in os.environ}


def _taken(port: int) -> bool:
    """Whether something serves on `port`, or a server could not bind it now."""
    return port_in_use(port) or not can_bind(port)


def _free_near(port: int) -> int:
    """The first port from `port` on that nothing serves and a server could bind."""
    while _taken(port):
        port += 1
    return port


def _print_banner(info: DemoInfo, home: Path, metrics_port: int) -> None:
    base = info.portal_url.rstrip("/")
    click.echo(
        "\nThe demo is running (Ctrl-C stops everything).\n\n"
        f"  Portal:       {info.portal_url}\n"
        f"                distributor admin: {info.portal_email}  {info.portal_password}\n"
        "                (or Sign in with Google as that account on the sandbox's page)\n"
        f"                platform operator: {DEMO_OPERATOR}  {info.operator_password}\n"
        "                (passwords are new at each start)\n"
        f"  Dashboard:    {base}/dashboard/\n"
        f"  Jobs:         {info.jobs_url}\n"
        f"  API docs:     {base}/api/v1/swagger   (OpenAPI: {base}/api/v1/openapi.json)\n"
        f"  Metrics:      {base}/metrics   (workers: http://127.0.0.1:{metrics_port}/metrics)\n"
        f"  Sandbox:      {info.sandbox_url}/_sandbox/   (the stand-in for Google)\n"
        f"  Logs:         {home / 'logs'}\n\n"
        f"  API key:      {info.api_key}\n"
        f"                (kept encrypted in {home / API_KEY_FILE}: the same at every start)\n"
        f"  Other shells: `bss` commands run here find this demo through {home / DEMO_ENV_FILE}\n"
        "                (e.g. `bss instances list`, `bss doctor demo/demo`)\n\n"
        "Submit an order:\n\n"
        f"{curl_example(base, info.api_key)}\n"
    )
