"""The HTTP connections under every Google call: one httplib2 pool per thread, and a POST sent
at most once.

A POST that creates something must not go out twice: httplib2 sends a request again when its
answer never came, whatever the method, so `SendOnceHttp` turns a second send into a network
error, and the job's step checks Google before it tries again.

Such a POST rides a kept-alive connection only while that connection is fresh: used within
`POST_REUSE_IDLE_S` and not closed by the server since (the socket has nothing to read). A
stale one would fail the POST as "maybe applied" for nothing, so it is replaced first. Opening
a connection for every POST cost a TCP handshake each time, and against Google a TLS one too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httplib2
from urllib3.util.wait import wait_for_read

# How long an idle kept-alive connection may still carry a POST: below the shortest idle timeout
# common servers keep (Apache's 5 s), so a server closing it as the POST leaves is unlikely; the
# socket's own check catches one it already closed.
POST_REUSE_IDLE_S = 4.0

_local = threading.local()


def _fresh(conn: Any) -> bool:
    """Whether a kept-alive connection may carry a POST (see the module's text)."""
    idle = time.monotonic() - getattr(conn, "bss_idle_since", float("-inf"))
    return idle < POST_REUSE_IDLE_S and not wait_for_read(conn.sock, timeout=0.0)


class SendOnceHttp(httplib2.Http):
    """httplib2, minus its silent re-send of a POST whose connection dropped before the answer.

    An insert Google applied would otherwise be made twice. Here a POST goes out once; a lost
    answer becomes a network error, and the job's step checks Google before trying again.
    """

    def _conn_request(
        self, conn: Any, request_uri: str, method: str, body: Any, headers: Any
    ) -> Any:
        if method != "POST":
            answer = super()._conn_request(conn, request_uri, method, body, headers)
            conn.bss_idle_since = time.monotonic()
            return answer
        if conn.sock is not None and not _fresh(conn):
            conn.close()  # a new connection, so that a drop before the answer means "maybe applied"
        send = conn.request
        sent = False

        def send_once(*args: Any, **kwargs: Any) -> Any:
            nonlocal sent
            if sent:
                raise ConnectionAbortedError("the connection dropped before Google answered")
            sent = True
            return send(*args, **kwargs)

        conn.request = send_once
        try:
            answer = super()._conn_request(conn, request_uri, method, body, headers)
        finally:
            conn.request = send
        conn.bss_idle_since = time.monotonic()
        return answer


def thread_http(timeout: float) -> httplib2.Http:
    """This thread's HTTP connection pool (httplib2 is not thread-safe)."""
    h = getattr(_local, "http", None)
    if h is None:
        h = _local.http = SendOnceHttp(timeout=timeout)
    return h
