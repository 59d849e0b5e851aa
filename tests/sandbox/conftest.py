"""Fixtures: one real sandbox server per session, reset and seeded for each test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.sandbox_smtp import smtp_of

from .helpers import Sandbox, World, customer_body

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandbox(port: int, log: Path, *extra: str) -> subprocess.Popen:
    """Start ``python -m bss.sandbox`` and wait until it answers."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "bss.sandbox", "--port", str(port), *extra],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    proc.log_file = out  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited: {log.read_text()}")
        try:
            requests.get(f"http://127.0.0.1:{port}/_sandbox/calls", timeout=1)
            return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("sandbox did not start")


def stop_sandbox(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.log_file.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, smtp_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    proc = start_sandbox(port, log, "--quiet", "--smtp-port", str(smtp_port))
    yield f"http://127.0.0.1:{port}"
    stop_sandbox(proc)


@pytest.fixture(scope="session")
def sandbox_smtp(
    sandbox_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, int, str]:
    """This directory's sandbox's SMTP server. The root conftest's fixture of the same name
    would do, but a session fixture is made once: made first for the root's sandbox, it would
    point the SMTP tests here at another sandbox than the one their tokens come from."""
    return smtp_of(sandbox_url, tmp_path_factory.mktemp("smtp-ca"))


@pytest.fixture
def sandbox(sandbox_url: str) -> Sandbox:
    """The running sandbox, wiped clean."""
    box = Sandbox(sandbox_url)
    box.reset()
    return box


@pytest.fixture
def world(sandbox: Sandbox) -> World:
    """Given a reseller with one admin, a Cloud project with every API on, and a web client."""
    return World.seed(sandbox)


@pytest.fixture
def reseller(world: World):
    """The Reseller API service, as the reseller's admin."""
    return world.service("reseller", "v1")


@pytest.fixture
def customer(reseller) -> dict:
    """Given a customer our reseller created (terms not yet accepted)."""
    return reseller.customers().insert(body=customer_body("acme.example")).execute()
