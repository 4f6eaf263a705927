"""DMARC (RFC 7489): find a domain's policy record, parse it strictly, and decide whether mail from
the platform aligns, by DKIM or by SPF.

Parsing and alignment are pure; discovery asks a domains/spf.py:Lookup for two TXT names at most.
The organisational domain comes from the Public Suffix List bundled with `publicsuffixlist`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from scriptmail.domains.spf import Lookup, PermanentError, decode, shown

POLICIES = ("none", "quarantine", "reject")
MODES = {"r": "relaxed", "s": "strict"}

_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_URI = re.compile(r"^(mailto:[^\s!,;]+@[^\s!,;]+|https?://[^\s!,;]+)(![0-9]+[kmgt]?)?$", re.IGNORECASE)


class Result(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"


class DmarcSyntaxError(ValueError):
    """The record is not valid DMARC; the message says which tag."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed DMARC record (defaults of RFC 7489 §6.3 filled in)."""

    p: str
    sp: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    fo: str = "0"
    ri: int = 86400
    p_missing: bool = False  # no valid p=, read as p=none because rua= is valid (§6.6.3 step 6)

    def applied(self, subdomain: bool) -> str:
        """The policy for a From domain: sp= for a subdomain of the record's domain, when given."""
        return (self.sp or self.p) if subdomain else self.p


def is_dmarc(record: bytes) -> bool:
    """A TXT record that claims to be DMARC: it starts with v=DMARC1 (§6.6.3 step 3)."""
    return re.match(rb"^[vV][ \t]*=[ \t]*DMARC1[ \t]*(;|$)", record) is not None


def parse(text: str) -> Policy:
    """Parse a DMARC record strictly: v=DMARC1 first, known tags well formed, none twice."""
    tags: dict[str, str] = {}
    for index, part in enumerate(text.split(";")):
        part = part.strip(" \t")
        if not part:
            if index == 0:
                raise DmarcSyntaxError("the record must start with v=DMARC1")
            continue
        name, equals, value = part.partition("=")
        name, value = name.strip(" \t").lower(), value.strip(" \t")
        if not equals or not _TAG.match(name):
            raise DmarcSyntaxError(f"{part!r} is not a tag=value pair")
        if name in tags:
            raise DmarcSyntaxError(f"the tag {name} appears twice")
        if index == 0 and (name != "v" or value != "DMARC1"):
            raise DmarcSyntaxError("the record must start with v=DMARC1")
        tags[name] = value
    rua = _uris(tags, "rua")
    ruf = _uris(tags, "ruf")
    p = tags.get("p", "").lower()
    p_missing = False
    if p not in POLICIES:
        if "p" in tags or not rua:
            shown = f"p={tags['p']}" if "p" in tags else "no p= tag"
            raise DmarcSyntaxError(f"{shown}: p must be none, quarantine or reject")
        p, p_missing = "none", True
    sp = tags.get("sp")
    if sp is not None and sp.lower() not in POLICIES:
        raise DmarcSyntaxError(f"sp={sp}: must be none, quarantine or reject")
    adkim = _mode(tags, "adkim")
    aspf = _mode(tags, "aspf")
    pct = tags.get("pct", "100")
    if not pct.isdigit() or int(pct) > 100:
        raise DmarcSyntaxError(f"pct={pct}: must be a whole number from 0 to 100")
    fo = tags.get("fo", "0")
    if not all(option in ("0", "1", "d", "s") for option in fo.split(":")):
        raise DmarcSyntaxError(f"fo={fo}: options are 0, 1, d and s, separated by ':'")
    ri = tags.get("ri", "86400")
    if not ri.isdigit() or int(ri) >= 2**32:
        raise DmarcSyntaxError(f"ri={ri}: must be a number of seconds")
    if tags.get("rf", "afrf").lower() != "afrf":
        raise DmarcSyntaxError(f"rf={tags['rf']}: the only report format is afrf")
    return Policy(p, sp.lower() if sp else None, adkim, aspf, int(pct), rua, ruf, fo, int(ri), p_missing)


def _mode(tags: dict[str, str], name: str) -> str:
    value = tags.get(name, "r").lower()
    if value not in MODES:
        raise DmarcSyntaxError(f"{name}={tags[name]}: must be r (relaxed) or s (strict)")
    return value


def _uris(tags: dict[str, str], name: str) -> tuple[str, ...]:
    if name not in tags:
        return ()
    uris = tuple(uri.strip() for uri in tags[name].split(","))
    for uri in uris:
        if not _URI.match(uri):
            raise DmarcSyntaxError(f"{name}: {uri!r} is not a mailto: or https: address")
    return uris


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list bundled with the package: no download, works offline


def organisational_domain(domain: str) -> str:
    """The registered domain above `domain` (§3.2), e.g. shop.example.co.uk → example.co.uk; a
    public suffix itself, or a name the list does not know, is its own organisational domain."""
    name = domain.rstrip(".").lower()
    return _suffixes().privatesuffix(name) or name


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """Does an authenticated domain align with the From domain: the same name (s), or the same
    organisational domain (r)?"""
    left, right = identifier.rstrip(".").lower(), from_domain.rstrip(".").lower()
    if mode == "s":
        return left == right
    return organisational_domain(left) == organisational_domain(right)


@dataclass(frozen=True, slots=True)
class Found:
    """What discovery found: the record's text and where, its policy (None: not valid DMARC), the
    parse error, and the number of DMARC records at that name."""

    name: str
    record: str | None = None
    policy: Policy | None = None
    error: str = ""
    count: int = 0


async def discover(lookup: Lookup, domain: str) -> Found:
    """The DMARC record of `domain`: _dmarc.<domain>, else _dmarc.<organisational domain> (§6.6.3).
    Raises TemporaryDnsError when the DNS does not answer."""
    name = domain.rstrip(".").lower()
    found = await _at(lookup, f"_dmarc.{name}")
    organisation = organisational_domain(name)
    if found.count == 0 and organisation != name:
        found = await _at(lookup, f"_dmarc.{organisation}")
    return found


async def _at(lookup: Lookup, name: str) -> Found:
    records = [record for record in await lookup.txt(name) if is_dmarc(record)]
    if not records:
        return Found(name)
    if len(records) > 1:
        return Found(name, " | ".join(map(shown, records)), error="more than one DMARC record", count=len(records))
    try:
        text = decode(records[0], "DMARC")
    except PermanentError as error:
        return Found(name, shown(records[0]), error=str(error), count=1)
    try:
        return Found(name, text, parse(text), count=1)
    except DmarcSyntaxError as error:
        return Found(name, text, error=str(error), count=1)
