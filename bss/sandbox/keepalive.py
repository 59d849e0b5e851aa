"""Connections kept open between requests, as Google's front ends keep them.

Werkzeug's server closes every connection after one answer (`Connection: close`): after each
answer it reads whatever else the client sent, for 10 ms, to discard a body the app left unread,
which would also swallow the next request of a kept-alive connection. Google answers HTTP/1.1 on
persistent connections, so against the sandbox every client paid a TCP connection per call that
it does not pay against Google, and the gateway's rule for a POST on a kept-alive connection
(`bss.gateway`'s transport) was never exercised.

`KeepAliveHandler` reads each request's body to its end itself (its length is known from
Content-Length), shows werkzeug's discarding read nothing to discard, and leaves the connection
open when the answer's length is known too. A request with a chunked body, an answer without
Content-Length, or a client asking to close closes the connection, as werkzeug does. An idle
connection is closed after `IDLE_TIMEOUT_S`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import socket
from typing import IO, TYPE_CHECKING, Any, cast

from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import parse_set_header
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: How long an idle connection stays open (Google's front ends keep one for minutes).
IDLE_TIMEOUT_S = 120.0


class KeepAliveHandler(WSGIRequestHandler):
    """Werkzeug's request handler, on persistent HTTP/1.1 connections (see the module)."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S
    _body: LimitedStream | None = None
    _sized = False

    def setup(self) -> None:
        super().setup()
        # An answer leaves as its headers, then its body: without this the body waits for the
        # client's delayed acknowledgement of the headers (40 ms) on a connection kept open.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        self._sized = False
        length = _body_length(self.headers)
        if length is None:  # as werkzeug does: answer, discard what is left, close
            self._body = None
            self.close_connection = True
            super().run_wsgi()
            return
        rfile, self._connection = self.rfile, self.connection
        self._body = LimitedStream(cast(IO[bytes], rfile), length)
        # Werkzeug's discarding read, after the answer, finds something to read at once and
        # reads nothing: the next request's bytes stay where the next request line is read.
        self.rfile, self.connection = cast(io.BufferedIOBase, _NOTHING), _always_readable()
        try:
            super().run_wsgi()
        finally:
            self.rfile, self.connection = rfile, self._connection
        if not self.close_connection:
            try:
                self._body.exhaust()  # what the app left unread of this request's body
            except (OSError, ClientDisconnected):
                self.close_connection = True

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        if self._body is not None:
            environ["wsgi.input"] = self._body
            environ["werkzeug.socket"] = self._connection  # a dropped connection's (faults)
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        name = keyword.lower()
        if name == "content-length":
            self._sized = True
        elif name == "connection" and value.lower() == "close":
            if self._body is not None and self._sized:
                return  # the connection stays as the request asked (HTTP/1.1: open)
            self.close_connection = True
        super().send_header(keyword, value)


def _body_length(headers: Any) -> int | None:
    """The request body's length, or None when it is chunked or its length is not a number."""
    if "chunked" in parse_set_header(headers.get("Transfer-Encoding")):
        return None
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        return None
    return length if length >= 0 else None


class _Nothing:
    """An input with nothing in it."""

    def read(self, size: int = -1) -> bytes:
        return b""


_NOTHING = _Nothing()


def _always_readable() -> socket.socket:
    """A socket that always has something to read: a byte nobody reads."""
    return _readable_pair()[0]


@functools.cache
def _readable_pair() -> tuple[socket.socket, socket.socket]:
    reader, writer = socket.socketpair()
    writer.sendall(b"\0")
    return reader, writer
