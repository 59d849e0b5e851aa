"""The connections under Google calls: a POST reuses a fresh kept-alive connection, never a
stale one, and never goes out twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bss.gateway import transport
from tests.support.counting_http import CountingHandler, CountingServer


class _Google(CountingHandler):
    """Answers every request with 200 on a kept-alive HTTP/1.1 connection; counts connections
    and POSTs, and closes a connection after its answer when told to."""

    server: _Server

    def _answer(self) -> None:
        close = self.server.close_after_answer  # read before answering: the client goes on then
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.command == "POST":
            with self.server.lock:
                self.server.posts += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        self.close_connection = close

    do_GET = do_POST = _answer


class _Server(CountingServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Google)
        self.posts = 0
        self.close_after_answer = False
        self.closed = threading.Event()  # set when the server has closed a connection

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.closed.set()


@pytest.fixture
def google() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def http() -> Iterator[transport.SendOnceHttp]:
    client = transport.SendOnceHttp(timeout=5)
    yield client
    for conn in client.connections.values():
        conn.close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/customers"


def test_posts_one_after_another_share_one_connection(google, http):
    http.request(_url(google), "GET")
    for _ in range(3):
        response, _body = http.request(_url(google), "POST", body="{}")
        assert response.status == 200
    assert google.posts == 3
    assert google.connections == 1


def test_a_post_after_the_connection_sat_idle_too_long_goes_on_a_new_one(google, http, monkeypatch):
    http.request(_url(google), "POST", body="{}")
    monkeypatch.setattr(transport, "POST_REUSE_IDLE_S", 0.0)
    http.request(_url(google), "POST", body="{}")
    assert google.posts == 2
    assert google.connections == 2


def test_a_post_after_google_closed_the_connection_goes_once_on_a_new_one(google, http):
    google.close_after_answer = True
    http.request(_url(google), "GET")
    google.close_after_answer = False
    assert google.closed.wait(5)
    # Google has closed the kept-alive connection: the POST must not be lost on it, nor sent twice
    response, _body = http.request(_url(google), "POST", body="{}")
    assert response.status == 200
    assert google.posts == 1
    assert google.connections == 2
