"""The DKIM TXT record a customer publishes: its name and its value split into DNS strings."""

from __future__ import annotations

from dataclasses import dataclass

from scriptmail.domains.keys import Algorithm

MAX_STRING = 255  # octets in one character-string of a TXT record (RFC 1035 §3.3)


@dataclass(frozen=True, slots=True)
class TxtRecord:
    name: str  # fully qualified, without the final dot: selector._domainkey.domain
    value: str  # the whole value, as it must read once the strings are joined
    strings: tuple[str, ...]  # the value cut into strings of at most 255 octets

    def zone_line(self) -> str:
        """The record as a line of a zone file (quoted strings in parentheses)."""
        quoted = " ".join(f'"{part}"' for part in self.strings)
        return f"{self.name}. IN TXT ( {quoted} )"


def record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def record_value(algorithm: Algorithm, public: str) -> str:
    return f"v=DKIM1; k={algorithm.key_type}; p={public}"


def split_strings(value: str, size: int = MAX_STRING) -> tuple[str, ...]:
    """Cut at most `size` octets per string (the value is ASCII: octets are characters)."""
    data = value.encode("ascii")
    return tuple(data[i : i + size].decode("ascii") for i in range(0, len(data), size)) or ("",)


def dkim_record(selector: str, domain: str, algorithm: Algorithm, public: str) -> TxtRecord:
    value = record_value(algorithm, public)
    return TxtRecord(record_name(selector, domain), value, split_strings(value))
