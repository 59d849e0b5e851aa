"""Connecting to the address that was checked, not to whatever DNS answers next.

requests resolves a URL's host itself when it connects, so between our check and that moment a
hostile DNS server could answer with another address (DNS rebinding). `PinnedAdapter` connects to
the checked address while the request still names the host everywhere the host matters: in the
Host header, in TLS's SNI, and as the name the server's certificate must be valid for.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter


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


def post_pinned(url: str, *, address: str, **kwargs: Any) -> requests.Response:
    """POST to `url`, connected to `address`; never follows a redirect, never reads the body."""
    host = urlsplit(url).hostname or ""
    with requests.Session() as session:
        # No proxies, .netrc or other settings from the environment: a proxy would resolve the
        # host itself, out of our check's reach.
        session.trust_env = False
        adapter = PinnedAdapter(host=host, address=address)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        response = session.post(url, **{**kwargs, "allow_redirects": False, "stream": True})
        response.close()
        return response
