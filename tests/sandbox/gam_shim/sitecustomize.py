"""Send a Python program's calls to Google to the sandbox instead (loaded as ``sitecustomize``).

Put this directory on ``PYTHONPATH`` and set ``BSS_SANDBOX_ORIGIN`` (``http://127.0.0.1:PORT``)
to run an unmodified Google client, such as GAM, against the sandbox. Only the scheme, host and
port change: path and query stay as they are, and the original host name travels in the
``Host`` header, so the sandbox can tell which API a ``/$discovery/rest`` call is for. Patched:
httplib2 and modern_httplib2 (google-api-python-client, google-auth-httplib2, GAM) and requests
(google-auth's requests transport, google-auth-oauthlib). Without the variable nothing changes.
"""

from __future__ import annotations

import functools
import importlib
import os
from urllib.parse import urlsplit, urlunsplit

ORIGIN = os.environ.get("BSS_SANDBOX_ORIGIN", "").rstrip("/")
GOOGLE_SUFFIXES = (".googleapis.com", ".google.com")
GOOGLE_HOSTS = {"googleapis.com", "google.com"}


def redirect(url: str) -> tuple[str, str | None]:
    """(the sandbox URL, the original host) for a Google URL; (url, None) for any other."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not (
        host in GOOGLE_HOSTS or host.endswith(GOOGLE_SUFFIXES)
    ):
        return url, None
    target = urlsplit(ORIGIN)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment)), host


def _with_host(headers: object, host: str) -> dict:
    merged = dict(headers or {})  # type: ignore[call-overload]
    if not any(str(k).lower() == "host" for k in merged):
        merged["Host"] = host
    return merged


def _patch_httplib2(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return
    original = module.Http.request
    if getattr(original, "_bss_sandbox", False):
        return

    @functools.wraps(original)
    def request(self, uri, method="GET", body=None, headers=None, *args, **kwargs):
        uri, host = redirect(uri)
        if host:
            headers = _with_host(headers, host)
        return original(self, uri, method, body, headers, *args, **kwargs)

    request._bss_sandbox = True  # type: ignore[attr-defined]
    module.Http.request = request


def _patch_requests() -> None:
    try:
        import requests
    except ImportError:
        return
    original = requests.Session.request
    if getattr(original, "_bss_sandbox", False):
        return

    @functools.wraps(original)
    def request(self, method, url, *args, **kwargs):
        url, host = redirect(url)
        if host:
            kwargs["headers"] = _with_host(kwargs.get("headers"), host)
        return original(self, method, url, *args, **kwargs)

    request._bss_sandbox = True  # type: ignore[attr-defined]
    requests.Session.request = request  # type: ignore[method-assign]


if ORIGIN:
    _patch_httplib2("modern_httplib2")
    _patch_httplib2("httplib2")
    _patch_requests()
