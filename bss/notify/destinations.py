"""Where a webhook may go: a public internet address, or a network the operator allows.

A distributor chooses the URL and the workers POST to it, so without this check the URL could name
the cloud's metadata service, a database on localhost or a host on the private network, and each
attempt on the job's timeline would tell what it answered. Every address of the host is checked
when the webhook is saved and again before each delivery; the delivery then connects to the very
address it checked (`bss.notify.pinning`), so a second DNS answer cannot send it elsewhere.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bss.errors import BssError

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A host name's addresses, best first; raises OSError (socket.gaierror) when it has none.
Resolver = Callable[[str], Sequence[str]]

PUBLIC_ONLY = "webhooks must go to a public internet address"


class RefusedDestination(BssError):
    """The URL's host is, or resolves to, an address webhooks may not go to."""

    code = "webhook_destination_refused"


class UnresolvedDestination(BssError):
    """The URL's host name has no address (now: DNS may be set up later)."""

    code = "webhook_destination_unresolved"


@dataclass(frozen=True)
class Destination:
    """A webhook URL's host name and its addresses, every one checked, best first."""

    host: str
    addresses: tuple[str, ...]


def allowed_networks(spec: str) -> tuple[Network, ...]:
    """The networks of a comma-separated list of CIDRs (BSS_WEBHOOK_ALLOWED_NETWORKS)."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
    )


def system_resolver(host: str) -> list[str]:
    """The host's addresses from the system's resolver (getaddrinfo), in its order."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def forbidden(address: Address, allowed: Sequence[Network] = ()) -> str | None:
    """What kind of non-public address `address` is, in a user's words; None if webhooks may
    go there (a public address, or one inside the `allowed` networks)."""
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: judge it instead (mapped)
        # or as well (6to4).
        if address.ipv4_mapped is not None:
            candidates = [address.ipv4_mapped]
        elif address.sixtofour is not None:
            candidates.append(address.sixtofour)
    for candidate in candidates:
        if any(candidate in network for network in allowed):
            continue
        if kind := _kind(candidate):
            return kind
    return None


def _kind(address: Address) -> str | None:
    if address.is_loopback:
        return "this machine itself (loopback)"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private network address"
    if address.is_reserved:
        return "a reserved address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if not address.is_global:
        return "an address that is not public"
    return None


def check_destination(
    url: str, *, allowed: Sequence[Network] = (), resolve: Resolver = system_resolver
) -> Destination:
    """The URL's host and its addresses, each one checked.

    Raises RefusedDestination (its message says why, to the distributor) when the host is, or
    resolves to, any forbidden address, and UnresolvedDestination when the name has no address.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise RefusedDestination("has no host name")
    literal = _ip_literal(host)
    if literal is not None:
        if kind := forbidden(literal, allowed):
            raise RefusedDestination(f"points at {host}, {kind}; {PUBLIC_ONLY}")
        return Destination(host=host, addresses=(str(literal),))
    try:
        found = [ipaddress.ip_address(a) for a in resolve(host)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise UnresolvedDestination(f"the host name {host} does not resolve") from exc
    if not found:
        raise UnresolvedDestination(f"the host name {host} does not resolve")
    for address in found:
        if kind := forbidden(address, allowed):
            # Which internal address a name has is the operator's business, not the tenant's.
            log.warning("webhook host %s resolves to %s: %s", host, address, kind)
            raise RefusedDestination(
                f"names {host}, which resolves to a private or local network address; "
                + PUBLIC_ONLY
            )
    return Destination(host=host, addresses=tuple(str(a) for a in found))


def _ip_literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
