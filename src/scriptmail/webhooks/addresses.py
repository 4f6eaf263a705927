"""Which URLs and addresses a webhook may reach (pure): never the platform's own network unless the
operator allows it (OWASP's SSRF advice: decide on the resolved address, not the name)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Named for the error message; anything else not globally routable is refused too (is_global).
FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this network"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("169.254.0.0/16", "link-local (cloud metadata lives here)"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
)
_FORBIDDEN = tuple((ipaddress.ip_network(network), name) for network, name in FORBIDDEN)
MAX_URL = 2000


class UrlRefused(ValueError):
    """A webhook URL or address that may not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # a name, or an address without brackets
    port: int
    path: str  # path and query, at least "/"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: IpAddress) -> str:
        """The URL with the checked address in place of the name: the connection goes there."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_url(url: str) -> Target:
    """An http(s) URL without credentials, with a host; raises UrlRefused."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise UrlRefused(f"a webhook URL has 1 to {MAX_URL} characters")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise UrlRefused("a webhook URL has no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRefused(f"not a URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("a webhook URL starts with https:// (or http://)")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("a webhook URL carries no user name or password (the signature authenticates us)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("a webhook URL names a host")
    if port == 0:
        raise UrlRefused("port 0 is not a port")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def literal_address(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def refusal(address: IpAddress, allowed: tuple[IpNetwork, ...] = ()) -> str | None:
    """Why this address may not be reached (None: it may). `allowed` is the operator's exceptions."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in network for network in allowed):
        return None
    for network, name in _FORBIDDEN:
        if address.version == network.version and address in network:
            return f"{address} is {name}"
    if not address.is_global or address.is_multicast:
        return f"{address} is not a public address"
    return None


def parse_networks(values: list[str]) -> tuple[IpNetwork, ...]:
    """The operator's allow-list; raises ValueError naming a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as error:
            raise ValueError(f"{value!r} is not a network: {error}") from None
    return tuple(networks)
