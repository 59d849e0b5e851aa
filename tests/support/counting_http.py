"""A kept-alive HTTP/1.1 server that counts the connections it accepted, for tests of what
rides a kept-alive connection and what opens a new one."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[CountingHandler]) -> None:
        super().__init__(address, handler)
        self.lock = threading.Lock()
        self.connections = 0


class CountingHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (connections kept alive), each new connection counted, nothing logged."""

    protocol_version = "HTTP/1.1"
    server: CountingServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, *args: object) -> None:
        pass
