"""Which URLs the service itself may fetch (web-download, http locations): the SSRF rules.

A caller must not be able to make the service read its own loopback, the cloud's metadata
address or private networks. Addresses are checked after name resolution, on every
redirect hop, and the fetch then goes to the address that was checked (no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vmimage.core.errors import Invalid

ALLOWED_SCHEMES = ("http", "https")
ALLOWED_PORTS = (80, 443)      # Glance's default; allow-listed hosts may use any port


class FilteredUrl(Invalid):
    """The URL does not pass filtering (wording Glance clients look for)."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"URI {url} does not pass filtering: {why}", url=url)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


@dataclass
class UrlPolicy:
    # Host names, addresses or networks (CIDR) allowed although not public.
    allow: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._names = {a.lower() for a in self.allow if not _is_network(a)}
        self._networks = [ipaddress.ip_network(a, strict=False) for a in self.allow if _is_network(a)]

    def target(self, url: str) -> Target:
        """The static checks: scheme and host (no name resolution)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise FilteredUrl(url, "malformed URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise FilteredUrl(url, f"scheme '{scheme}' is not allowed")
        if not parts.hostname:
            raise FilteredUrl(url, "no host")
        return Target(scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80))

    def check_addresses(self, url: str, target: Target, addresses: list[str]) -> None:
        """Every address the host resolves to must be public, or allow-listed."""
        if not addresses:
            raise FilteredUrl(url, "host does not resolve")
        named = self._allowed_name(target.host)
        for raw in addresses:
            address = ipaddress.ip_address(raw.split("%")[0])
            if named or any(address in net for net in self._networks):
                continue
            if target.port not in ALLOWED_PORTS:
                raise FilteredUrl(url, f"port {target.port} is not allowed")
            if not _public(address):
                raise FilteredUrl(url, f"address {address} is not public")

    def _allowed_name(self, host: str) -> bool:
        if host in self._names:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in net for net in self._networks)


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
        return True
    except ValueError:
        return False


# IPv6 ranges that carry an IPv4 address: a packet to one of them reaches that IPv4 host
# through a relay or translator, so the embedded address is what must be public.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")     # deprecated (RFC 3879), yet routed by some


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4, Teredo or NAT64 address leads to."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:            # 2002:AABB:CCDD::/48
        return address.sixtofour
    if address.teredo is not None:               # 2001:0000::/32: (server, client); the client is reached
        return address.teredo[1]
    for net in _NAT64:
        if address in net:                       # the last 32 bits (RFC 6052, /96; /48 local use too)
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address in _SITE_LOCAL:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return _public(inner)
    return address.is_global and not (address.is_multicast or address.is_reserved
                                      or address.is_loopback or address.is_link_local)
