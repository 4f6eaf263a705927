"""Resolving an endpoint's host to addresses that may be reached (dnspython, configurable servers)."""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.resolver

from scriptmail.webhooks.addresses import IpAddress, IpNetwork, Target, UrlRefused, literal_address, refusal

TIMEOUT = 5.0


class Resolver:
    def __init__(self, nameservers: list[str], port: int = 53, allowed: tuple[IpNetwork, ...] = ()) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = list(nameservers)
            self._resolver.port = port
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = TIMEOUT
        self.allowed = allowed

    async def address(self, target: Target) -> IpAddress:
        """The address to connect to. Every address the name has must be allowed: a name with one
        private address among public ones is refused, so no answer order lets it through."""
        literal = literal_address(target.host)
        if literal is not None:
            found = [literal]
        else:
            found = []
            for rdtype in ("A", "AAAA"):
                try:
                    answer = await self._resolver.resolve(target.host, rdtype)
                except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                    continue
                except dns.exception.DNSException as error:
                    raise UrlRefused(f"cannot resolve {target.host}: {error.__class__.__name__}") from None
                found += [literal_address(record.address) for record in answer]
            found = [address for address in found if address is not None]
            if not found:
                raise UrlRefused(f"{target.host} has no address")
        for address in found:
            why = refusal(address, self.allowed)
            if why is not None:
                raise UrlRefused(f"{target.host} may not be reached: {why}")
        return found[0]
