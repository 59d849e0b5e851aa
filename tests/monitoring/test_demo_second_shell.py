"""`bss demo` as a newcomer runs it: a second shell's `bss` commands find it, and a restart keeps
the printed API key working."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from bss.tools import free_port


def _start_demo(cwd: Path, env: dict[str, str], port: int, sandbox_port: int):
    log = cwd / f"demo-{time.monotonic_ns()}.log"
    with log.open("w") as out:  # the demo writes to its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "bss", "demo", "--port", str(port), "--sandbox-port",
             str(sandbox_port), "--worker-threads", "2"],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while "Submit an order" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    return proc, log.read_text()


def _children(pid: int, named: str) -> list[int]:
    """Direct children of `pid` whose command line mentions `named`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[1]) == pid and named in cmdline:
            found.append(int(stat.parent.name))
    return found


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(60)


def _api_key(banner: str) -> str:
    return re.search(r"API key:\s+(bss_\S+)", banner).group(1)


def test_a_second_shell_finds_the_demo_and_a_restart_keeps_its_api_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BSS_", "GOOGLE_", "REDIS"))}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    port, sandbox_port = free_port(), free_port()
    proc, banner = _start_demo(tmp_path, env, port, sandbox_port)
    try:
        key = _api_key(banner)
        # A second shell in the same directory, with nothing set: doctor checks the demo's
        # instance against the demo's sandbox, not real Google
        doctor = subprocess.run(
            [sys.executable, "-m", "bss", "doctor", "demo/demo"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "PASS  Token refresh" in doctor.stdout
        listed = subprocess.run(
            [sys.executable, "-m", "bss", "instances", "list", "--json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert '"ref": "demo/demo"' in listed.stdout
        # When its worker process dies, the demo starts it again and says so
        [worker] = _children(proc.pid, "dramatiq")
        os.killpg(worker, signal.SIGKILL)
        log = max(tmp_path.glob("demo-*.log"), key=lambda p: p.stat().st_mtime)
        deadline = time.monotonic() + 30
        while "The worker process exited; started it again" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert proc.poll() is None
        # And jobs run again
        api = f"http://127.0.0.1:{port}/api/v1/jobs"
        headers = {"Authorization": f"Bearer {key}"}
        body = {"instance": "demo", "operation": "customer.sync", "params": {"customer": "x.io"}}
        job = requests.post(api, json=body, headers=headers, timeout=10).json()
        deadline = time.monotonic() + 60
        while requests.get(f"{api}/{job['id']}", headers=headers, timeout=10).json()["state"] in (
            "queued",
            "running",
            "waiting",
            "retrying",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        _stop(proc)
    assert not (tmp_path / "var" / "demo.env").exists()  # gone with the demo
    # Restarted, the demo prints the same key, and it still works
    proc, banner = _start_demo(tmp_path, env, port, sandbox_port)
    try:
        assert _api_key(banner) == key
        resp = requests.get(
            f"http://127.0.0.1:{port}/api/v1/jobs",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert resp.status_code == 200
    finally:
        _stop(proc)
