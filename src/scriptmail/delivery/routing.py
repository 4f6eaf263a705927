"""Where mail for a domain goes: a static route, else the relay host, else the domain's MX hosts."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from scriptmail.config import DeliverySettings, parse_host_port
from scriptmail.international.addresses import AddressError, needs_idna, to_a_label

_CACHE_MAX = 10_000
_NEGATIVE_TTL = 60.0
_MIN_TTL = 30.0
_MAX_TTL = 3600.0


def _lookup_name(domain: str) -> str:
    """A domain as DNS and the route table know it: the A-label (IDNA 2008), lower case for an IDN."""
    return to_a_label(domain) if needs_idna(domain) else domain


def _hop(target: str) -> Hop:
    host, port = parse_host_port(target, 25)
    return Hop(_lookup_name(host), port)


@dataclass(frozen=True, slots=True)
class Hop:
    """One server to try, in order."""

    host: str
    port: int


class RouteError(Exception):
    """No hop could be found. `permanent` decides bounce (5xx) or defer (4xx)."""

    def __init__(self, text: str, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent

    @property
    def code(self) -> int:
        return 550 if self.permanent else 451


class Router:
    def __init__(self, settings: DeliverySettings) -> None:
        self._routes = {_lookup_name(domain): _hop(target) for domain, target in settings.routes.items()}
        self._relay = _hop(settings.relay_host) if settings.relay_host else None
        resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        if settings.nameservers:
            resolver.nameservers = list(settings.nameservers)
        resolver.port = settings.dns_port
        resolver.lifetime = 20.0
        resolver.timeout = 5.0
        self._resolver = resolver
        self._cache: dict[str, tuple[float, list[Hop] | RouteError]] = {}

    def static_hop(self, domain: str) -> Hop | None:
        """The configured next hop, if any (routes win over the relay host)."""
        return self._routes.get(_lookup_name(domain)) or self._relay

    async def hops(self, domain: str) -> list[Hop]:
        """Ordered list of servers for `domain` (Unicode or A-label; DNS is asked the A-label); raises RouteError."""
        try:
            domain = _lookup_name(domain)
        except AddressError as error:
            raise RouteError(f"domain {domain!r} cannot be looked up: {error}", permanent=True) from None
        static = self.static_hop(domain)
        if static is not None:
            return [static]
        cached = self._cache.get(domain)
        now = time.monotonic()
        if cached and cached[0] > now:
            if isinstance(cached[1], RouteError):
                raise cached[1]
            return cached[1]
        try:
            hops, ttl = await self._resolve(domain)
        except RouteError as error:
            self._remember(domain, now + _NEGATIVE_TTL, error)
            raise
        self._remember(domain, now + min(max(ttl, _MIN_TTL), _MAX_TTL), hops)
        return hops

    def _remember(self, domain: str, until: float, value: list[Hop] | RouteError) -> None:
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[domain] = (until, value)

    async def _resolve(self, domain: str) -> tuple[list[Hop], float]:
        try:
            answer = await self._resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN:
            raise RouteError(f"domain {domain} does not exist", permanent=True) from None
        except dns.resolver.NoAnswer:
            # RFC 5321 §5.1: no MX records, the domain itself is the implicit MX.
            return await self._address_hops(domain), _MIN_TTL
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as error:
            raise RouteError(f"DNS lookup of MX for {domain} failed: {error}", permanent=False) from None
        except dns.exception.DNSException as error:
            raise RouteError(f"DNS lookup of MX for {domain} failed: {error}", permanent=False) from None
        records = sorted(answer, key=lambda record: (record.preference, random.random()))
        if len(records) == 1 and records[0].exchange == dns.name.root:
            raise RouteError(f"domain {domain} accepts no mail (null MX, RFC 7505)", permanent=True)
        hops = [Hop(record.exchange.to_text(omit_final_dot=True), 25) for record in records if record.exchange != dns.name.root]
        return hops, float(answer.rrset.ttl if answer.rrset is not None else _MIN_TTL)

    async def _address_hops(self, domain: str) -> list[Hop]:
        for rdtype in ("A", "AAAA"):
            try:
                await self._resolver.resolve(domain, rdtype, search=False)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as error:
                raise RouteError(f"DNS lookup of {rdtype} for {domain} failed: {error}", permanent=False) from None
            return [Hop(domain, 25)]
        raise RouteError(f"domain {domain} has no MX and no address", permanent=True)

    async def addresses(self, host: str) -> list[str]:
        """A and AAAA addresses of an MX host, resolved through the configured resolver."""
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(host, rdtype, search=False)
            except dns.exception.DNSException:
                continue
            found.extend(record.to_text() for record in answer)
        return found
