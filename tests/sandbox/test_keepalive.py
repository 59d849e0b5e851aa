"""The sandbox keeps connections open between requests, as Google does: one TCP connection
carries a client's calls one after another, whatever a call's body and answer."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from .helpers import ALL_SCOPES, Sandbox, World, customer_body


@pytest.fixture
def conn(sandbox: Sandbox) -> Iterator[http.client.HTTPConnection]:
    """One HTTP/1.1 connection to the sandbox."""
    url = urlsplit(sandbox.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    yield connection
    connection.close()


def _call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    answer = conn.getresponse()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()


def test_calls_ride_one_connection(conn: http.client.HTTPConnection, world: World) -> None:
    minted = world.sandbox.tokens(world.client["client_id"], world.admin, ALL_SCOPES)
    auth = {"Authorization": f"Bearer {minted['access_token']}", "Content-Type": "application/json"}
    status, headers, _ = _call(conn, "GET", "/apps/reseller/v1/customers/acme.example", None, auth)
    assert status == 404
    assert "connection" not in headers  # HTTP/1.1: open unless said otherwise
    first = conn.sock
    assert first is not None
    body = json.dumps(customer_body("acme.example")).encode()
    status, _, created = _call(conn, "POST", "/apps/reseller/v1/customers", body, auth)
    assert status == 200, created
    status, _, read = _call(conn, "GET", "/apps/reseller/v1/customers/acme.example", None, auth)
    assert status == 200
    assert json.loads(read)["customerDomain"] == "acme.example"
    assert conn.sock is first  # the same connection carried all three


def test_body_left_unread_does_not_spill_into_the_next_call(
    conn: http.client.HTTPConnection,
) -> None:
    """A call refused before its body is read (no credentials): the body is read to its end,
    and the next call on the connection is answered as itself."""
    body = json.dumps(customer_body("acme.example", alternateEmail="x" * 20_000)).encode()
    status, _, refused = _call(
        conn, "POST", "/apps/reseller/v1/customers", body, {"Content-Type": "application/json"}
    )
    assert status == 401, refused
    first = conn.sock
    assert first is not None
    status, _, page = _call(conn, "GET", "/_sandbox/calls")
    assert status == 200, page
    assert conn.sock is first


def test_pipelined_calls_are_each_answered(sandbox: Sandbox) -> None:
    url = urlsplit(sandbox.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            b"POST /apps/reseller/v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
            b"{...}"
            b"GET /_sandbox/calls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        answers = sock.makefile("rb")
        statuses = []
        for _ in range(2):
            answer = http.client.HTTPResponse(_Reading(answers))  # type: ignore[arg-type]
            answer.begin()
            answer.read()
            statuses.append(answer.status)
        assert answers.read() == b""  # then closed, as the second asked
    assert statuses == [401, 200]


class _Reading:
    """A socket's one reader, for answers read one after another (an answer read to its end
    closes its reader)."""

    def __init__(self, file: Any) -> None:
        self.file = file

    def makefile(self, mode: str) -> Any:
        return self

    def readline(self, limit: int = -1) -> bytes:
        return self.file.readline(limit)

    def read(self, size: int = -1) -> bytes:
        return self.file.read(size)

    def close(self) -> None:
        pass


def test_a_chunked_request_closes_its_connection(conn: http.client.HTTPConnection) -> None:
    """The sandbox reads a chunked body only to the end of that request: as before, the
    connection is closed after the answer, and says so."""
    conn.putrequest("POST", "/apps/reseller/v1/customers")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"3\r\n{}\n\r\n0\r\n\r\n")
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 401
    assert answer.getheader("Connection") == "close"
