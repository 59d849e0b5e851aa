"""Connecting to the address that was checked, not to whatever DNS answers next.

requests resolves a URL's host itself when it connects, so between our check and that moment a
hostile DNS server could answer with another address (DNS rebinding). `PinnedAdapter` connects to
the checked address while the request still names the host everywhere the host matters: in the
Host header, in TLS's SNI, and as the name the server's certificate must be valid for.

Deliveries to one receiver ride one kept-alive connection while it is fresh, instead of a TCP
and a TLS handshake each (`post_pinned`). A connection is kept per thread and per checked
address, so one that DNS now answers differently for is never reused; only while it was used
within `POST_REUSE_IDLE_S` (as for Google); and only when the receiver's answer was read to its
end, small and quickly (`_drain`: within a second). An answer that drips, or is large, or has
no length closes its connection as before, so a receiver holds a delivery thread at most that
second longer than before.
No cookie is kept: receivers of different distributors may share a host.
"""

from __future__ import annotations

import http.cookiejar
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from bss.gateway import POST_REUSE_IDLE_S

# An answer is read to its end (so that its connection can carry the next delivery) only when it
# says it is this short and arrives within `DRAIN_S`; otherwise its connection is closed.
MAX_DRAINED_BODY = 16 * 1024
DRAIN_S = 1.0
# Kept-alive receivers per thread; the least recently used one is closed beyond that.
MAX_KEPT = 16

_local = threading.local()


class PinnedAdapter(HTTPAdapter):
    """A transport that sends requests for `host` to `address` (and refuses any other host)."""

    def __init__(self, *, host: str, address: str) -> None:
        super().__init__(max_retries=0)
        self.host = host.lower()
        self.address = address

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The connection pool of the pinned address, verifying TLS for the host's name."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if str(host_params.get("host") or "").lower() != self.host:
            # Something reads the URL differently from our check: refuse rather than guess.
            raise requests.exceptions.InvalidURL(f"this transport only reaches {self.host}")
        host_params["host"] = self.address
        if host_params.get("scheme") == "https":
            # SNI and the certificate check use this name instead of the address we dial.
            pool_kwargs["server_hostname"] = self.host
        return host_params, pool_kwargs

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        """Refused: only the pinning path (requests >= 2.32.2) may open connections."""
        raise NotImplementedError("upgrade requests: PinnedAdapter needs requests >= 2.32.2")

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        """Name the host in the Host header (the connection itself only knows the address)."""
        request.headers["Host"] = urlsplit(request.url or "").netloc.rpartition("@")[2]


def post_pinned(url: str, *, address: str, reuse: bool = True, **kwargs: Any) -> requests.Response:
    """POST to `url`, connected to `address`; never follows a redirect, never returns the body.

    Rides this thread's kept-alive connection to the same host at the same address while it is
    fresh (see the module's text); with `reuse=False`, a connection of its own, closed after."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    options = {**kwargs, "allow_redirects": False, "stream": True}
    if not reuse:
        with _new_session(host=host, address=address) as session:
            response = session.post(url, **options)
            response.close()
            return response
    response = _session((parts.scheme, host, parts.port, address)).post(url, **options)
    timeout = kwargs.get("timeout")
    limit = min(DRAIN_S, timeout if isinstance(timeout, int | float) else DRAIN_S)
    if not _drain(response, time.monotonic() + limit):
        response.raw.close()  # the connection goes with it: the next POST opens a new one
    response.raw.release_conn()
    return response


def _session(key: tuple[str, str, int | None, str]) -> requests.Session:
    """This thread's session for `key`, new unless one was used within `POST_REUSE_IDLE_S`."""
    kept: OrderedDict[tuple[str, str, int | None, str], tuple[requests.Session, float]]
    kept = _local.__dict__.setdefault("kept", OrderedDict())
    now = time.monotonic()
    for stale in [k for k, (_, used) in kept.items() if now - used >= POST_REUSE_IDLE_S]:
        kept.pop(stale)[0].close()
    if key in kept:
        session = kept.pop(key)[0]
    else:
        session = _new_session(host=key[1], address=key[3])
        while len(kept) >= MAX_KEPT:
            kept.popitem(last=False)[1][0].close()
    kept[key] = (session, now)
    return session


def _new_session(*, host: str, address: str) -> requests.Session:
    session = requests.Session()
    # No proxies, .netrc or other settings from the environment: a proxy would resolve the host
    # itself, out of our check's reach.
    session.trust_env = False
    # No cookies: a receiver's cookie would otherwise ride along with the next distributor's
    # delivery to the same host.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = PinnedAdapter(host=host, address=address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _drain(response: requests.Response, deadline: float) -> bool:
    """Read the answer's body to its end if it is short and comes by `deadline`; whether it did.

    Each read waits at most until the deadline, so a receiver that drips its answer a byte at
    a time cannot hold the thread."""
    raw = response.raw
    length = raw.length_remaining  # None when the answer is chunked or gives no length
    if length is None or length > MAX_DRAINED_BODY:
        return False
    try:
        while raw.length_remaining:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            connection = raw.connection
            if connection is None:
                return False
            connection.timeout = left  # each read waits at most until the deadline
            if not raw.read1(raw.length_remaining, decode_content=False):
                return False
    except (OSError, urllib3.exceptions.HTTPError):
        return False
    return True
