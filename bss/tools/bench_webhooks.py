"""`bss bench --scenario webhooks`: JOBS webhook POSTs [2000] from --concurrency threads to a
billing receiver over HTTPS in a process of its own, through the pinned transport deliveries use:
once riding kept-alive connections, as deliveries go now, and once on a new connection (and a
TLS handshake) per POST, as they went before. Prints our CPU per delivery, deliveries/s and the
connections the receiver accepted, for each, with the receiver's CPU per delivery beside ours."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
import requests

from bss.notify import post_pinned
from bss.sandbox import self_signed
from bss.tools.bench_cpu import tree_cpu_seconds
from bss.tools.processes import free_port, wait_http

HOST = "hooks.billing.example"
# An event as billing receives it: about the size of a job.succeeded.
EVENT = json.dumps({"event": "job.succeeded", "job": {"id": "0" * 26, "result": {"x": "y" * 200}}})


class _Receiver(BaseHTTPRequestHandler):
    """Answers every POST 200 with a short body, kept alive; counts the connections that
    carried a POST (GET /connections reads the count)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else its answer's second write waits for our delayed ACK
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not getattr(self, "counted", False):
            self.counted = True
            with self.server.lock:
                self.server.connections += 1
        self._answer(b'{"ok":true}')

    def do_GET(self) -> None:  # noqa: N802
        self._answer(json.dumps({"connections": self.server.connections}).encode())

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    lock = threading.Lock()
    connections = 0


def serve_receiver(port: int, folder: str) -> None:
    """The receiver's process: HTTPS on 127.0.0.1:`port` with the certificate in `folder`."""
    server = _Server(("127.0.0.1", port), _Receiver)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(folder, "receiver.pem"), os.path.join(folder, "key.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def _run(url: str, ca: str, posts: int, threads: int, *, reuse: bool) -> tuple[float, float]:
    """CPU ms of this process per POST, and POSTs/s."""
    errors: list[str] = []

    def deliver(count: int) -> None:
        for _ in range(count):
            resp = post_pinned(
                url, address="127.0.0.1", reuse=reuse, data=EVENT, verify=ca, timeout=10
            )
            if resp.status_code != 200:
                errors.append(str(resp.status_code))

    shares = [posts // threads + (i < posts % threads) for i in range(threads)]
    cpu, wall = time.process_time(), time.perf_counter()
    workers = [threading.Thread(target=deliver, args=(n,)) for n in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if errors:
        raise click.ClickException(f"the receiver answered {errors[0]} ({len(errors)} times)")
    return cpu * 1000 / posts, posts / wall


def run_webhooks_bench(*, posts: int, threads: int, rounds: int = 2) -> None:
    """Print the figures of both ways, alternating, `rounds` times (see the module's text)."""
    port = free_port()
    identity = self_signed(HOST)
    with tempfile.TemporaryDirectory(prefix="bss-bench-webhooks-") as folder:
        ca = os.path.join(folder, "receiver.pem")
        Path(ca).write_text(identity.certificate_pem)
        Path(folder, "key.pem").write_text(identity.key_pem)
        code = "from bss.tools.bench_webhooks import serve_receiver as s; s({}, {!r})"
        code = code.format(port, folder)
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        try:
            origin = f"https://{HOST}:{port}"
            wait_http(f"https://127.0.0.1:{port}/connections", proc=proc, verify=ca)
            url = f"{origin}/bss"
            _run(url, ca, threads * 5, threads, reuse=True)  # warm-up: imports, first-use caches
            for _ in range(rounds):
                for name, reuse in (("kept-alive", True), ("new per POST", False)):
                    before, theirs = _connections(port, ca), tree_cpu_seconds(proc.pid)
                    ms, rate = _run(url, ca, posts, threads, reuse=reuse)
                    seen = _connections(port, ca) - before
                    theirs = (tree_cpu_seconds(proc.pid) - theirs) * 1000 / posts
                    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                    click.echo(
                        f"{name:>13}: {posts} POSTs from {threads} threads: {ms:.2f} ms of our "
                        f"CPU per POST ({theirs:.2f} ms of the receiver's), {rate:.0f} POSTs/s, "
                        f"{seen} connections (load {load})"
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _connections(port: int, ca: str) -> int:
    url = f"https://127.0.0.1:{port}/connections"
    return int(requests.get(url, verify=ca, timeout=10).json()["connections"])
