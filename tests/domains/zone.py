"""A DNS table for the pure SPF and DMARC tests: the zone data of a story, answered without a network
(the end-to-end tests answer the same through tests/support/dns_server.py)."""

from __future__ import annotations

from scriptmail.domains.spf import TemporaryDnsError


class Zone:
    """{"name": {"TXT": ["v=spf1 -all"], "A": ["192.0.2.1"], "MX": ["mx.name"]}}; names in
    `failing` raise TemporaryDnsError. Counts every query, as a resolver would see them."""

    def __init__(self, names: dict[str, dict[str, list[str]]], failing: tuple[str, ...] = ()) -> None:
        self.names = {name.lower(): types for name, types in names.items()}
        self.failing = failing
        self.queries: list[tuple[str, str]] = []

    def _get(self, name: str, rdtype: str) -> list[str]:
        self.queries.append((name.lower(), rdtype))
        if name.lower() in self.failing:
            raise TemporaryDnsError(f"SERVFAIL for {name}")
        return self.names.get(name.lower(), {}).get(rdtype, [])

    async def txt(self, name: str) -> list[bytes]:
        return [_octets(text) for text in self._get(name, "TXT")]

    async def addresses(self, name: str, version: int) -> list[str]:
        return self._get(name, "A" if version == 4 else "AAAA")

    async def mx(self, name: str) -> list[str]:
        return self._get(name, "MX")

    async def ptr(self, address: str) -> list[str]:
        return self._get(address, "PTR")


def _octets(text: str) -> bytes:
    """A TXT value as octets: "\xe9" is the byte 0xE9 (hostile records), other characters UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")
