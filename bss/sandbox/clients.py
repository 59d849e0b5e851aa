"""OAuth clients' application types: "Web application" and "Desktop app" (installed)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

#: Application types of an OAuth client, as the Cloud console names them in the JSON download.
APPLICATION_TYPES = ("web", "installed")
#: The redirect URI a Desktop app's JSON download lists.
INSTALLED_REDIRECT_URIS = ["http://localhost"]


def application_type(client: dict) -> str:
    """'web' or 'installed'; clients saved before Desktop apps existed are web clients."""
    return str(client.get("application_type") or "web")


def is_loopback(uri: str) -> bool:
    """http://127.0.0.1, http://[::1] or http://localhost, on any port and path."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme != "http" or not parts.hostname or parts.username or parts.password:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def redirect_allowed(client: dict, uri: str) -> bool:
    """Exact match for a web client; any loopback address, port and path for a Desktop app."""
    if application_type(client) == "installed":
        return is_loopback(uri)
    return uri in client["redirect_uris"]


def client_json(client: dict, base: str) -> dict:
    """The client as the Cloud console's "Download JSON" gives it."""
    kind = application_type(client)
    uris = INSTALLED_REDIRECT_URIS if kind == "installed" else client["redirect_uris"]
    return {
        kind: {
            "client_id": client["client_id"],
            "project_id": client["project"],
            "auth_uri": base + "/o/oauth2/auth",
            "token_uri": base + "/token",
            "auth_provider_x509_cert_url": base + "/oauth2/v1/certs",
            "client_secret": client["client_secret"],
            "redirect_uris": list(uris),
        }
    }
