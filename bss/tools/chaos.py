"""`bss bench --scenario chaos`: orders through a stack whose workers are SIGKILLed, whose Redis
is flushed and restarted, and whose Google fails at random; then what was lost, duplicated or
misreported, counted against the sandbox's own record of what Google holds and was asked."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import redis
import requests
from sqlmodel import col, select

from bss.db import session_scope
from bss.models import Job, JobEvent
from bss.tools.bench import Stack, start_stack
from bss.tools.processes import Supervisor, free_port, port_in_use

STARTER = "1010020027"
FINAL = ("succeeded", "failed")
# Short enough that killed workers and lost messages are noticed within seconds.
HTTP_TIMEOUT = 5
# Marginal probability of each fault on every Google method. The sandbox tries its rules in
# order and the first that fires wins, so each rule gets the conditional probability. A timed
# out call is still applied, after `seconds`: soon after we gave up, or once a retry is under way.
FAULTS: tuple[tuple[str, float, dict[str, Any]], ...] = (
    ("error", 0.10, {"status": 503, "reason": "backendError"}),
    ("error", 0.05, {"status": 429, "reason": "rateLimitExceeded"}),
    ("timeout", 0.01, {"seconds": HTTP_TIMEOUT + 1}),
    ("timeout", 0.01, {"seconds": HTTP_TIMEOUT + 15}),
    ("applied_response_lost", 0.02, {}),
)
LATEST_APPLY = HTTP_TIMEOUT + 15
STACK_ENV = {
    "BSS_JOB_LEASE_SECONDS": "20",
    "BSS_JOB_TIME_LIMIT_SECONDS": "15",
    "BSS_RESEND_AFTER_SECONDS": "10",
    "BSS_SWEEP_INTERVAL_SECONDS": "2",
    "BSS_JOB_RETRY_BASE_SECONDS": "0.5",
    "BSS_JOB_RETRY_MAX_SECONDS": "10",
    "GOOGLE_HTTP_TIMEOUT": str(HTTP_TIMEOUT),
}
INSERTS = {
    "reseller.customers.insert": "customers",
    "directory.users.insert": "admins",
    "reseller.subscriptions.insert": "subscriptions",
}


def order_body(domain: str) -> dict[str, Any]:
    """An order.create request: a new customer, its first admin and one subscription."""
    return {
        "instance": "demo",
        "operation": "order.create",
        "params": {
            "customer": {
                "domain": domain,
                "alternate_email": "it@chaos-billing.example.net",
                "postal_address": {
                    "contact_name": "Ada Admin",
                    "organization_name": domain,
                    "postal_code": "94043",
                    "country_code": "US",
                },
            },
            "admin": {"primary_email": f"ada@{domain}", "given_name": "Ada", "family_name": "A"},
            "subscriptions": [{"sku_id": STARTER, "plan": "FLEXIBLE", "seats": 5}],
        },
    }


def _describe(kind: str, p: float, extra: dict[str, Any]) -> str:
    seconds = extra.get("seconds")
    detail = extra.get("status") or (f"(applied after {seconds}s)" if seconds else "")
    return f"{kind} {detail} {p:.0%}".replace("  ", " ")


def install_faults(sandbox: str) -> None:
    """FAULTS on every Google method (the token endpoint's too)."""
    left = 1.0
    for kind, p, extra in FAULTS:
        body = {"method": "*", "kind": kind, "probability": p / left, **extra}
        requests.post(f"{sandbox}/_sandbox/faults", json=body, timeout=10).raise_for_status()
        left -= p


@dataclass
class CallLog:
    """The sandbox keeps its last 2,000 calls: read its tail often and keep all of it."""

    sandbox: str
    calls: list[dict] = field(default_factory=list)
    gaps: int = 0

    def poll(self) -> None:
        resp = requests.get(f"{self.sandbox}/_sandbox/calls", params={"limit": 600}, timeout=10)
        tail = resp.json()["calls"]
        # The longest end of what we hold that starts the tail is the part already seen.
        for k in range(min(len(tail), len(self.calls)), -1, -1):
            if k == 0 or self.calls[-k:] == tail[:k]:
                break
        if self.calls and k == 0 and tail:
            self.gaps += 1
        self.calls += tail[k:]


@dataclass
class Submitter:
    """A billing system: each order with its own Idempotency-Key, sent again until accepted."""

    stack: Stack
    tag: str
    give_up_after: float = 300.0
    job_ids: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)

    def submit(self, n: int) -> None:
        domain = f"chaos-{self.tag}-{n}.example"
        headers = {
            "Authorization": f"Bearer {self.stack.api_key}",
            "Idempotency-Key": f"chaos-{self.tag}-{n}",
        }
        deadline, delay = time.monotonic() + self.give_up_after, 0.2
        while time.monotonic() < deadline:
            try:
                resp = requests.post(
                    f"{self.stack.base}/api/v1/jobs",
                    json=order_body(domain),
                    headers=headers,
                    timeout=30,
                )
                self.statuses[resp.status_code] += 1
                if resp.status_code in (200, 202):
                    self.job_ids[domain] = resp.json()["id"]
                    return
                if resp.status_code < 500 and resp.status_code != 429:
                    self.refused[domain] = f"{resp.status_code} {resp.text[:200]}"
                    return
            except requests.RequestException as exc:
                self.statuses[type(exc).__name__] += 1
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        self.refused[domain] = "gave up"


@dataclass
class Chaos:
    """Worker kills and Redis trouble, spread over the run by how many jobs have finished."""

    sup: Supervisor
    stack: Stack
    worker_threads: int
    log: list[str] = field(default_factory=list)
    kills: int = 0
    started: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:7.1f}s {what}")

    def start_worker(self) -> None:
        n = len([c for c in self.sup.children if c[0].startswith("worker")]) + 1
        argv = ["-m", "dramatiq", "workers", "--processes", "1", "--threads"]
        env = prometheus_env(self.stack.home, n)
        self.sup.python(f"worker-{n}", *argv, str(self.worker_threads), env=env)

    def kill_worker(self) -> None:
        alive = [
            p for name, p in self.sup.children if name.startswith("worker") and p.poll() is None
        ]
        victim = random.choice(alive)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.pid, signal.SIGKILL)  # the dramatiq parent and its worker process
        victim.wait(10)
        self.kills += 1
        self.note(f"SIGKILL worker pid {victim.pid}; a new one starts")
        self.start_worker()

    def flush_redis(self) -> None:
        redis.Redis.from_url(self.stack.settings.redis_url).flushall()
        self.note("Redis FLUSHALL")

    def restart_redis(self, down_seconds: float = 3.0) -> None:
        port = int(self.stack.settings.redis_url.rsplit(":", 1)[1].split("/")[0])
        for name, proc in self.sup.children:
            if name == "redis" and proc.poll() is None:
                proc.terminate()
                proc.wait(15)
        while port_in_use(port):
            time.sleep(0.05)
        self.note("redis-server stopped")
        time.sleep(down_seconds)
        self.sup.start_redis(port=port)
        self.note("redis-server started again, empty")


def prometheus_env(home: Path, n: int) -> dict[str, str]:
    """Each worker its own metrics port and directory (Dramatiq clears the directory at boot)."""
    return {
        "dramatiq_prom_port": str(free_port()),
        "dramatiq_prom_db": str(home / f"prometheus-{n}"),
    }


def _final_count(database_url: str, ids: list[str]) -> int:
    with session_scope(database_url) as s:
        query = select(Job.id).where(col(Job.state).in_(FINAL), col(Job.id).in_(ids))
        return len(s.exec(query).all())


def _google(sandbox: str, domains: set[str]) -> dict[str, Counter]:
    """How many customers, admin users and Starter subscriptions Google holds per domain."""
    state = requests.get(f"{sandbox}/_sandbox/state", timeout=60).json()
    held: dict[str, Counter[str]] = {k: Counter() for k in ("customers", "admins", "subscriptions")}
    for c in state["customers"]:
        held["customers"][c["customerDomain"]] += 1
    for u in state["users"]:
        if u["isAdmin"]:
            held["admins"][u["primaryEmail"].split("@", 1)[1]] += 1
    for sub in state["subscriptions"]:
        if sub["skuId"] == STARTER:
            held["subscriptions"][sub["customerDomain"]] += 1
    return {k: Counter({d: n for d, n in v.items() if d in domains}) for k, v in held.items()}


def _flags(result: dict[str, Any]) -> dict[str, bool]:
    """The order's `created` flags, by the kind of resource each is about."""
    subs = result.get("subscriptions") or [{}]
    return {
        "customers": result.get("customer_created") is True,
        "admins": result.get("admin_created") is True,
        "subscriptions": all(s.get("created") is True for s in subs),
    }


def _applied(call: dict) -> bool:
    """Google made the change: it answered 200, or made it and then dropped the answer."""
    return call["status"] == 200 or (
        call["fault"] == "applied_response_lost" and call["status"] is None
    )


def run_chaos(
    *,
    orders: int = 1000,
    concurrency: int = 8,
    worker_processes: int = 2,
    worker_threads: int = 8,
    kills: int = 64,
    timeout: float = 1500.0,
) -> bool:
    """Push `orders` order.create jobs through chaos; print the figures; True when none was
    lost, duplicated or misreported."""
    home = Path(tempfile.mkdtemp(prefix="bss-chaos-"))
    sup = Supervisor(log_dir=home / "logs")
    try:
        os.environ.update(prometheus_env(home, 1))
        stack = start_stack(
            sup, home, worker_processes=1, worker_threads=worker_threads, env=STACK_ENV
        )
        chaos = Chaos(sup, stack, worker_threads)
        for _ in range(worker_processes - 1):
            chaos.start_worker()
        install_faults(stack.sandbox)
        calls = CallLog(stack.sandbox)
        submitter = Submitter(stack, uuid.uuid4().hex[:6])
        click.echo(
            f"chaos: {orders} order.create, {concurrency} clients, {worker_processes} worker "
            f"processes x {worker_threads} threads, {kills} SIGKILLs; faults on every method "
            + ", ".join(_describe(*fault) for fault in FAULTS)
            + f"; {' '.join(f'{k}={v}' for k, v in STACK_ENV.items())}; stack in {home}"
        )
        started, loads = time.monotonic(), [os.getloadavg()[0]]
        pool = ThreadPoolExecutor(concurrency)
        submitting = [pool.submit(submitter.submit, n) for n in range(orders)]
        flushed = restarted = False
        done = 0
        while time.monotonic() - started < timeout:
            calls.poll()
            loads.append(os.getloadavg()[0])
            ids = list(submitter.job_ids.values())
            done = _final_count(stack.settings.database_url, ids)
            if all(f.done() for f in submitting) and done >= len(ids):
                break
            if chaos.kills < kills and done >= (chaos.kills + 1) * orders / (kills + 1):
                chaos.kill_worker()
            elif not flushed and done >= orders / 3:
                chaos.flush_redis()
                flushed = True
            elif not restarted and done >= 2 * orders / 3:
                chaos.restart_redis()
                restarted = True
            time.sleep(0.5)
        wall = time.monotonic() - started
        pool.shutdown(cancel_futures=True)
        time.sleep(LATEST_APPLY + 2)  # what Google applies late, after a timeout, lands
        calls.poll()
        return _report(stack, submitter, chaos, calls, wall=wall, loads=loads)
    finally:
        sup.stop_all()


def _report(
    stack: Stack, submitter: Submitter, chaos: Chaos, calls: CallLog, *, wall: float, loads: list
) -> bool:
    with session_scope(stack.settings.database_url) as s:
        jobs = {j.id: j for j in s.exec(select(Job)).all()}
        s.expunge_all()
        events = s.exec(select(JobEvent).where(col(JobEvent.kind).in_(("google_call", "sweep"))))
        seen = [(e.kind, (e.data or {}).get("state"), e.job_id) for e in events]
    event_kinds = Counter((kind, state) for kind, state, _ in seen)
    # A lapsed lease is re-sent at each sweep until a worker takes it: count jobs, not messages.
    taken_over = {job_id for kind, state, job_id in seen if (kind, state) == ("sweep", "running")}
    accepted = submitter.job_ids
    held = _google(stack.sandbox, set(accepted) | set(submitter.refused))
    duplicated = {k: sorted(d for d, n in v.items() if n > 1) for k, v in held.items()}
    per_domain = Counter(j.customer_domain for j in jobs.values())
    duplicated["jobs"] = sorted(d for d, n in per_domain.items() if n > 1)
    lost = {d: "no job: " + why for d, why in submitter.refused.items()}
    misreported: list[str] = []
    outcome: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for domain, job_id in accepted.items():
        job = jobs.get(job_id)
        outcome[job.state if job else "unknown"] += 1
        if job is None or job.state not in FINAL:
            lost[domain] = f"{job_id} {job.state if job else 'not in the database'}"
        elif job.state == "failed":
            error = job.error or {}
            ran_out = str(error.get("message", "")).startswith("Gave up after")
            failures[f"{error.get('code')} ({'out of attempts' if ran_out else 'at once'})"] += 1
        else:
            # Every domain is new: whatever Google holds for it, this order's job made.
            for kind, made in _flags(job.result or {}).items():
                if made != (held[kind][domain] > 0):
                    misreported.append(
                        f"{job_id} {domain}: {kind} created={made}, "
                        f"Google holds {held[kind][domain]}"
                    )
    applied = Counter(
        INSERTS[c["method"]] for c in calls.calls if c["method"] in INSERTS and _applied(c)
    )
    duplicates = sum(len(v) for v in duplicated.values())
    faults = Counter(c["fault"] for c in calls.calls if c["fault"])
    attempts = Counter(min(j.attempts, 9) for j in jobs.values())
    rows = [
        ("orders submitted", len(accepted) + len(submitter.refused)),
        ("accepted (202/200)", len(accepted)),
        ("outcome", dict(outcome)),
        ("LOST", len(lost)),
        ("DUPLICATED", f"{duplicates} { ({k: len(v) for k, v in duplicated.items()}) }"),
        ("MISREPORTED created", len(misreported)),
        ("failed, by code", dict(failures) or "-"),
        ("attempts per job", dict(sorted(attempts.items()))),
        ("jobs re-sent after their worker died", len(taken_over)),
        (
            "messages re-sent by the sweep",
            sum(n for (k, _), n in event_kinds.items() if k == "sweep"),
        ),
        ("Google inserts applied", dict(applied)),
        ("Google holds", {k: sum(v.values()) for k, v in held.items()}),
        (
            "Google calls (sandbox log)",
            f"{len(calls.calls)}; faults {dict(faults)}"
            + (f"; {calls.gaps} gaps in the log" if calls.gaps else ""),
        ),
        (
            "Google calls (job events)",
            sum(n for (k, _), n in event_kinds.items() if k == "google_call"),
        ),
        ("API answers to submits", dict(submitter.statuses)),
        ("workers SIGKILLed", chaos.kills),
        ("wall time", f"{wall:.0f} s ({len(accepted) / wall:.2f} orders/s)"),
        (
            "load average",
            "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
            + f" (1-min peak {max(loads):.2f}) on {os.cpu_count()} CPUs",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    click.echo("\n".join(chaos.log))
    click.echo("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
    details = [f"lost {d}: {why}" for d, why in lost.items()] + misreported
    details += [f"duplicated {k}: {d}" for k, ds in duplicated.items() for d in ds]
    for line in details[:30]:
        click.echo(f"  {line}")
    return not lost and not duplicates and not misreported
