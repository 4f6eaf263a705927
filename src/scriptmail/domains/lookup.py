"""The DNS queries of the SPF and DMARC checks, through dnspython and the configured resolver.

One instance serves one check: its answers are kept for the check's length, so evaluating SPF
for several outbound addresses asks each name once.
"""

from __future__ import annotations

import time

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
import dns.reversename

from scriptmail.config import DeliverySettings
from scriptmail.domains.spf import TemporaryDnsError


class DnsLookup:
    """SPF's and DMARC's lookups (domains/spf.py:Lookup) through `delivery.nameservers`/`dns_port`."""

    def __init__(self, settings: DeliverySettings, timeout: float = 5.0, budget: float = 30.0) -> None:
        resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        if settings.nameservers:
            resolver.nameservers = list(settings.nameservers)
        resolver.port = settings.dns_port
        resolver.use_edns(0, 0, 1232)  # the usual UDP size; a larger answer comes truncated, then over TCP
        resolver.timeout = timeout
        resolver.lifetime = timeout * 2
        self._resolver = resolver
        # A hostile zone can answer each query just before the timeout, a hundred times over (10
        # terms, 10 MX hosts each): the whole check gets `budget` seconds, then it is temperror.
        self._deadline = time.monotonic() + budget
        self._answers: dict[tuple[str, str], list[str] | list[bytes]] = {}

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TemporaryDnsError(f"{rdtype} {name}: the DNS lookups of this check took too long")
        try:
            return await self._resolver.resolve(name, rdtype, search=False, lifetime=min(left, self._resolver.lifetime))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.resolver.NoNameservers:
            raise TemporaryDnsError(f"no server answered {rdtype} {name} (SERVFAIL or refused)") from None
        except dns.exception.Timeout:
            raise TemporaryDnsError(f"{rdtype} {name}: the DNS server did not answer in time") from None
        except dns.name.NameTooLong:
            return None
        except dns.exception.DNSException as error:
            raise TemporaryDnsError(f"{rdtype} {name}: {error}") from None

    async def txt(self, name: str) -> list[bytes]:
        """Each TXT record of `name`, its strings joined (RFC 7208 §3.3)."""
        key = (name.lower(), "TXT")
        if key not in self._answers:
            answer = await self._query(name, "TXT")
            records = [b"".join(record.strings) for record in answer] if answer is not None else []
            self._answers[key] = records  # a DNS message holds 64 KiB at most: bounded
        return self._answers[key]  # type: ignore[return-value]

    async def addresses(self, name: str, version: int) -> list[str]:
        """A (version 4) or AAAA (version 6) addresses of `name`."""
        return await self._texts(name, "A" if version == 4 else "AAAA")

    async def mx(self, name: str) -> list[str]:
        """The exchange names of `name`'s MX records (a null MX gives none)."""
        return [exchange for exchange in await self._texts(name, "MX") if exchange not in (".", "")]

    async def ptr(self, address: str) -> list[str]:
        """The names of a reverse lookup of `address`."""
        return await self._texts(dns.reversename.from_address(address).to_text(), "PTR")

    async def _texts(self, name: str, rdtype: str) -> list[str]:
        key = (name.lower(), rdtype)
        if key not in self._answers:
            answer = await self._query(name, rdtype)
            found: list[str] = []
            for record in answer if answer is not None else []:
                if rdtype == "MX":
                    found.append(record.exchange.to_text(omit_final_dot=True))
                elif rdtype == "PTR":
                    found.append(record.target.to_text(omit_final_dot=True))
                else:
                    found.append(record.to_text())
            self._answers[key] = found
        return self._answers[key]  # type: ignore[return-value]
