"""The flow works when the start and the callback land on different web processes."""

from __future__ import annotations

import os
import signal
import sys

import requests

from bss.tools import free_port, wait_http
from tests.support.portal import make_account, set_up_google
from tests.support.portal_pages import csrf_of, google_consent


def test_authenticate_across_gunicorn_workers(
    supervisor, database_url, secret_keys, sandbox, tmp_path
):
    # Given the portal served by gunicorn with two worker processes
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    google = set_up_google(sandbox, base)
    env = {
        "BSS_HOME": str(tmp_path),
        "DATABASE_URL": database_url,
        "BSS_SECRET_KEYS": secret_keys,
        "BSS_SESSION_SECRET": "several-processes",
        "GOOGLE_SANDBOX_URL": sandbox,
        "BSS_PUBLIC_BASE_URLS": base,
    }
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "web.wsgi:app",
    ]
    proc = supervisor.start(f"portal-web-{port}", argv, env=env)
    try:
        wait_http(f"{base}/healthz", proc=proc)
        account = make_account(database_url)
        browser = requests.Session()
        token = csrf_of(browser.get(f"{base}/sign-in", timeout=10).text)
        browser.post(
            f"{base}/sign-in",
            data={"email": account.email, "password": account.password, "csrf_token": token},
            timeout=10,
        )
        # (signing in starts a fresh session, with a fresh CSRF token)
        token = csrf_of(browser.get(f"{base}/portal/instances", timeout=10).text)
        created = browser.post(
            f"{base}/portal/instances/new",
            data={
                "csrf_token": token,
                "name": "main",
                "mode": "oauth",
                "client_id": google.client_id,
                "client_secret": google.client_secret,
            },
            timeout=10,
        )
        instance_url = created.url
        # When the admin authenticates several times (each request may hit either worker)
        for _ in range(4):
            start = browser.post(
                instance_url + "/authenticate",
                data={"csrf_token": token, "display": "popup"},
                allow_redirects=False,
                timeout=10,
            )
            answer = browser.get(
                google_consent(start.headers["Location"], account=google.admin), timeout=10
            )
            # Then every callback finds the state the other process may have saved
            assert answer.status_code == 200 and '"ok": true' in answer.text, answer.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
