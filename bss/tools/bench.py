"""`bss bench`: start a local stack, push jobs through it, and print what was measured."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import requests

from bss import migrate
from bss.settings import Settings
from bss.tools.demo import seed, start_services
from bss.tools.processes import Supervisor, free_port, wait_http


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def _order(n: int, tag: str) -> dict:
    return {
        "instance": "demo",
        "operation": "customer.create",
        "params": {
            "domain": f"bench-{tag}-{n}.example",
            "alternate_email": f"it{n}@bench.example.net",
            "postal_address": {
                "contact_name": "Bench",
                "organization_name": f"Bench {n}",
                "postal_code": "10001",
                "country_code": "US",
            },
        },
    }


@dataclass
class Stack:
    """A throw-away local deployment: its settings, sandbox, web app and a demo API key."""

    home: Path
    settings: Settings
    sandbox: str
    base: str
    api_key: str
    supervisor: Supervisor


def start_stack(
    sup: Supervisor,
    home: Path,
    *,
    worker_processes: int,
    worker_threads: int,
    env: dict[str, str] | None = None,
    quiet_sandbox: bool = False,
) -> Stack:
    """Sandbox, Redis, SQLite, the demo distributor and instance, web, workers and scheduler."""
    port, sandbox_port = free_port(), free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    quiet = ["--quiet"] if quiet_sandbox else []
    proc = sup.python("sandbox", "-m", "bss.sandbox", "--port", str(sandbox_port), *quiet)
    os.environ.update(
        {
            "BSS_HOME": str(home),
            "REDIS_URL": sup.start_redis(port=free_port()),
            "GOOGLE_SANDBOX_URL": sandbox,
            "BSS_PUBLIC_BASE_URLS": f"http://127.0.0.1:{port}",
            # The sandbox enforces no quota unless a scenario sets one: pacing calls at Google's
            # default quotas would measure the quotas, not the stack.
            **{f"BSS_QUOTA_{api}": "1000" for api in ("RESELLER", "ADMIN", "LICENSING", "GMAIL")},
            **(env or {}),
        }
    )
    wait_http(f"{sandbox}/_sandbox/state", proc=proc)
    settings = Settings()
    migrate.upgrade(settings.database_url)
    info = seed(settings, sandbox)
    web = start_services(
        sup, port=port, worker_processes=worker_processes, worker_threads=worker_threads
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", proc=web)
    return Stack(home, settings, sandbox, base, info.api_key, sup)


@contextmanager
def bench_stack(
    *, home: Path | None = None, prefix: str = "bss-bench-", **kwargs: Any
) -> Iterator[Stack]:
    """`start_stack` in a new temporary BSS_HOME (or `home`), every process stopped on the way
    out; the home is kept, with its logs."""
    home = home or Path(tempfile.mkdtemp(prefix=prefix))
    sup = Supervisor(log_dir=home / "logs")
    # A bench stopped with SIGTERM (kill, timeout) stops its stack too, as Ctrl-C does: Python
    # would otherwise end at once, leaving the stack's processes running.
    main = threading.current_thread() is threading.main_thread()  # where signals are handled
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main else None
    try:
        yield start_stack(sup, home, **kwargs)
    finally:
        sup.stop_all()
        if main:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_ordering(*, rounds: int, changes: int, worker_threads: int, failure_rate: float) -> bool:
    """`changes` seat changes on one subscription, back to back, while Google answers 503 to
    `failure_rate` of them; per round, whether Google ends at the last one sent."""
    with bench_stack(worker_processes=1, worker_threads=worker_threads) as stack:
        headers = {"Authorization": f"Bearer {stack.api_key}"}

        def submit(operation: str, params: dict) -> str:
            body: dict[str, Any] = {"instance": "demo", "operation": operation, "params": params}
            resp = requests.post(
                f"{stack.base}/api/v1/jobs", json=body, headers=headers, timeout=30
            )
            resp.raise_for_status()
            return str(resp.json()["id"])

        def wait(ids: list[str]) -> list[dict]:
            while True:
                jobs = [
                    requests.get(
                        f"{stack.base}/api/v1/jobs/{i}", headers=headers, timeout=30
                    ).json()
                    for i in ids
                ]
                if all(j["state"] in ("succeeded", "failed", "cancelled") for j in jobs):
                    return jobs
                time.sleep(0.3)

        good, started = 0, time.perf_counter()
        for r in range(rounds):
            domain = f"ordering-{uuid.uuid4().hex[:6]}-{r}.example"
            order = {**_order(r, "ordering")["params"], "domain": domain}
            wait([submit("order.create", {
                "customer": order,
                "admin": {"primary_email": f"ada@{domain}", "given_name": "A", "family_name": "B"},
                "subscriptions": [{"sku_id": "1010020027", "plan": "FLEXIBLE", "seats": 5}],
            })])  # fmt: skip
            requests.post(f"{stack.sandbox}/_sandbox/customers/{domain}/accept-tos", timeout=10)
            requests.post(
                f"{stack.sandbox}/_sandbox/faults",
                json={"method": "reseller.subscriptions.changeSeats", "probability": failure_rate},
                timeout=10,
            ).raise_for_status()
            sent = list(range(6, 6 + changes))
            ids = [
                submit("subscription.change_seats",
                       {"customer": domain, "sku_id": "1010020027", "seats": n})
                for n in sent
            ]  # fmt: skip
            jobs = wait(ids)
            requests.delete(f"{stack.sandbox}/_sandbox/faults", timeout=10)
            state = requests.get(f"{stack.sandbox}/_sandbox/state", timeout=10).json()
            [sub] = [s for s in state["subscriptions"] if s["customerDomain"] == domain]
            final = sub["seats"]["maximumNumberOfSeats"]
            calls = requests.get(
                f"{stack.sandbox}/_sandbox/calls",
                params={"method": "reseller.subscriptions.changeSeats"},
                timeout=10,
            ).json()["calls"]
            refused = sum(1 for c in calls if c.get("status") == 503)
            good += final == sent[-1]
            click.echo(
                f"round {r + 1}: sent {sent[0]}..{sent[-1]}, Google ends at {final} "
                f"({'the last sent' if final == sent[-1] else 'NOT the last sent'}); "
                f"{refused} of {len(calls)} changeSeats calls answered 503, "
                f"{sum(1 for j in jobs if j['attempts'] > 1)} jobs needed a second attempt"
            )
            requests.delete(f"{stack.sandbox}/_sandbox/calls", timeout=10)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        click.echo(
            f"ordering: {good}/{rounds} rounds end at the last seat count sent "
            f"({time.perf_counter() - started:.0f} s; load average {load} on {os.cpu_count()} CPUs)"
        )
        return good == rounds
