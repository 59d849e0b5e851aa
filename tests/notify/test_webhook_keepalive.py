"""Webhook deliveries to one receiver share a kept-alive connection, but only to the address
just checked, never with a cookie, and never at the cost of a thread held by a slow answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bss.notify import pinning, post_pinned
from tests.support.counting_http import CountingHandler, CountingServer

HOST = "hooks.billing.example"


class _Receiver(CountingHandler):
    """Billing's receiver on HTTP/1.1: counts connections, notes each request's Cookie header,
    and answers as its server's `answer` says."""

    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.cookies.append(self.headers.get("Cookie"))
        self.send_response(200)
        self.send_header("Set-Cookie", "session=billing-a; Path=/")
        if self.server.answer in ("short", "short, then close"):
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b'{"ok":true}')
            # (closed without saying so, as a receiver restarting or timing out does)
            self.close_connection = self.server.answer == "short, then close"
        elif self.server.answer == "drip":  # says 1,000 bytes, sends one every 0.2 s
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self._trickle(b" ", every=0.2, times=1000)
        else:  # "endless": chunked, never ends
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._trickle(b"1\r\n \r\n", every=0.05, times=None)

    def _trickle(self, piece: bytes, *, every: float, times: int | None) -> None:
        """Send `piece` every so often (`times` times, or until the test ends), then close."""
        sent = 0
        while (times is None or sent < times) and not self.server.stopping.wait(every):
            try:
                self.wfile.write(piece)
                self.wfile.flush()
            except OSError:
                break
            sent += 1
        self.close_connection = True


class _Server(CountingServer):
    def __init__(self, address: str, port: int = 0) -> None:
        super().__init__((address, port), _Receiver)
        self.cookies: list[str | None] = []
        self.answer = "short"
        self.stopping = threading.Event()


def _serve(address: str, port: int = 0) -> _Server:
    server = _Server(address, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stop(server: _Server) -> None:
    server.stopping.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Server]:
    server = _serve("127.0.0.1")
    yield server
    _stop(server)


def _post(server: _Server, address: str = "127.0.0.1") -> int:
    url = f"http://{HOST}:{server.server_address[1]}/bss"
    return post_pinned(url, address=address, data=b"{}", timeout=10).status_code


def test_deliveries_one_after_another_share_one_connection(receiver):
    # When three events go to the same receiver at the same checked address
    statuses = [_post(receiver) for _ in range(3)]
    # Then all were accepted over one connection, and the receiver's cookie never came back
    assert statuses == [200, 200, 200]
    assert receiver.connections == 1
    assert receiver.cookies == [None, None, None]


def test_a_new_address_for_the_host_gets_a_new_connection(receiver):
    # Given a kept-alive connection to the receiver at 127.0.0.1
    other = _serve("127.0.0.2", receiver.server_address[1])
    try:
        _post(receiver)
        # When DNS now answers 127.0.0.2 for the host (and that address passed the check)
        _post(receiver, address="127.0.0.2")
        # Then the delivery went to the new address, not over the connection already open
        assert (receiver.connections, len(receiver.cookies)) == (1, 1)
        assert (other.connections, len(other.cookies)) == (1, 1)
    finally:
        _stop(other)


def test_a_kept_connection_the_receiver_closed_is_replaced_before_the_next_delivery(receiver):
    # Given the receiver closed the connection after its answer, without a word
    receiver.answer = "short, then close"
    _post(receiver)
    time.sleep(0.2)
    # When the next event goes out within the reuse window
    receiver.answer = "short"
    # Then it is accepted, over a new connection, not lost on the dead one
    assert _post(receiver) == 200
    assert receiver.connections == 2
    assert len(receiver.cookies) == 2


def test_a_connection_idle_too_long_is_not_reused(receiver, monkeypatch):
    monkeypatch.setattr(pinning, "POST_REUSE_IDLE_S", 0.2)
    _post(receiver)
    time.sleep(0.3)
    _post(receiver)
    assert receiver.connections == 2


@pytest.mark.parametrize("answer", ["drip", "endless"])
def test_a_slow_or_endless_answer_neither_holds_the_thread_nor_is_reused(receiver, answer):
    # Given a receiver that answers 200 but drips or never ends its body
    receiver.answer = answer
    # When an event is delivered to it
    started = time.monotonic()
    status = _post(receiver)
    took = time.monotonic() - started
    # Then the delivery counts as accepted without waiting for the body (the drip alone would
    # take 200 s) ...
    assert status == 200
    assert took < pinning.DRAIN_S + 3, took
    # ... and the next delivery does not ride the connection the unread body is still on
    receiver.answer = "short"
    assert _post(receiver) == 200
    assert receiver.connections == 2


def test_threads_do_not_share_connections(receiver):
    _post(receiver)
    other = threading.Thread(target=_post, args=(receiver,))
    other.start()
    other.join()
    assert receiver.connections == 2


def test_one_thread_keeps_a_bounded_number_of_receivers(monkeypatch):
    monkeypatch.setattr(pinning, "MAX_KEPT", 2)
    first, second, third = servers = [_serve("127.0.0.1") for _ in range(3)]
    try:
        for server in servers:
            _post(server)
        # The least recently used receiver's connection was let go; the last two are kept
        _post(third)
        _post(first)
        assert (first.connections, third.connections) == (2, 1)
    finally:
        for server in servers:
            _stop(server)
