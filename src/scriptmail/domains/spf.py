"""SPF (RFC 7208): check_host() for one address and one domain, over a small DNS lookup interface.

Pure apart from the lookups it is given: the caller chooses the resolver (dnspython in
domains/lookup.py, a table in tests). Mechanisms ip4 ip6 a mx ptr include exists all, the
qualifiers, redirect=, macros, the limit of 10 DNS-querying terms and of 2 void lookups.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect
VOID_LIMIT = 2  # §4.6.4: lookups answered NXDOMAIN or with no record
MX_ADDRESS_LIMIT = 10  # §4.6.4: address lookups of one mx (or ptr) term
MAX_RECORD = 4096  # a record longer than this is hostile, not a policy (a UDP answer is 512 to ~4096)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Result(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


QUALIFIERS = {"+": Result.PASS, "-": Result.FAIL, "~": Result.SOFTFAIL, "?": Result.NEUTRAL}


class TemporaryDnsError(Exception):
    """The DNS did not answer (SERVFAIL, timeout): the result is temperror, try again later."""


class Lookup(Protocol):
    """The DNS queries SPF needs. A name that does not exist or has no record of the type gives [];
    a server failure or a timeout raises TemporaryDnsError."""

    async def txt(self, name: str) -> list[bytes]: ...  # each record's strings, joined
    async def addresses(self, name: str, version: int) -> list[str]: ...  # A (4) or AAAA (6)
    async def mx(self, name: str) -> list[str]: ...  # exchange names
    async def ptr(self, address: str) -> list[str]: ...  # names of a reverse lookup


class Problem(StrEnum):
    """Why a record is a permerror, for advice that says what to change."""

    SYNTAX = "syntax"  # a term, a modifier or a byte that is not SPF
    RECORDS = "records"  # more than one SPF record at one name
    LOOKUPS = "lookups"  # over the limit of DNS-querying terms, or of void lookups
    MISSING = "missing"  # an include or redirect names a domain without a record


class PermanentError(Exception):
    """The record cannot be evaluated (syntax, limits): the result is permerror."""

    def __init__(self, text: str, problem: Problem = Problem.SYNTAX) -> None:
        super().__init__(text)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What check_host() decided, the record it read at the top domain, and why (for permerror,
    temperror and the term that matched)."""

    result: Result
    record: str | None = None
    reason: str = ""
    lookups: int = 0
    problem: Problem | None = None  # for permerror


@dataclass(slots=True)
class _State:
    lookup: Lookup
    address: Address
    sender: str
    helo: str
    lookups: int = 0
    voids: int = 0
    seen: list[str] = field(default_factory=list)
    record: str | None = None  # the top domain's record as read, shown even when it cannot be decoded

    def count(self) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise PermanentError(
                f"more than {LOOKUP_LIMIT} DNS-querying terms (include, a, mx, ptr, exists, redirect)", Problem.LOOKUPS
            )

    def void(self, found: list[str] | list[bytes]) -> None:
        if not found:
            self.voids += 1
            if self.voids > VOID_LIMIT:
                raise PermanentError(f"more than {VOID_LIMIT} lookups found nothing (void lookups)", Problem.LOOKUPS)


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_MECHANISM = re.compile(r"^([+\-~?]?)([A-Za-z][A-Za-z0-9_.-]*)(?:([:/])(.*))?$", re.DOTALL)
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)
_MACRO = re.compile(r"%\{([slodiphcrtv])([0-9]*)(r?)([-.+,/_=]*)\}", re.IGNORECASE)
_CIDR = re.compile(r"^(.*?)(?:/([0-9]{1,2}))?(?://([0-9]{1,3}))?$", re.DOTALL)


def valid_domain(name: str) -> bool:
    """A name check_host() may query: at least two labels, each 1-63 characters, 253 in all."""
    name = name.rstrip(".")
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(_LABEL.match(label) for label in labels)


def spf_records(texts: list[bytes]) -> list[bytes]:
    """The TXT records that are SPF records: "v=spf1" alone or followed by a space (§4.5)."""
    return [text for text in texts if text.lower() == b"v=spf1" or text.lower().startswith(b"v=spf1 ")]


def decode(record: bytes, kind: str = "SPF") -> str:
    """A policy record (SPF, DMARC) as text: ASCII only, not hostile in size."""
    if len(record) > MAX_RECORD:
        raise PermanentError(f"the {kind} record is {len(record)} bytes long (more than {MAX_RECORD})")
    try:
        text = record.decode("ascii")
    except UnicodeDecodeError:
        raise PermanentError(f"the {kind} record holds bytes that are not ASCII") from None
    if any(not character.isprintable() for character in text):
        raise PermanentError(f"the {kind} record holds control characters")
    return text


def shown(record: bytes) -> str:
    """A record as it may be shown to a person: printable ASCII, other bytes escaped, cut at MAX_RECORD."""
    text = record[:MAX_RECORD].decode("ascii", "backslashreplace")
    text = "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)
    return text + ("..." if len(record) > MAX_RECORD else "")


@dataclass(frozen=True, slots=True)
class Term:
    """One mechanism: qualifier, name, its argument (domain-spec, address) and CIDR lengths."""

    qualifier: Result
    name: str
    argument: str = ""
    cidr4: int | None = None
    cidr6: int | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed SPF record: its mechanisms in order and the modifiers that matter."""

    terms: tuple[Term, ...]
    redirect: str | None = None
    explanation: str | None = None


_WITH_DOMAIN = {"a", "mx", "ptr", "include", "exists"}
_NEEDS_DOMAIN = {"include", "exists"}


def parse(text: str) -> Record:
    """Parse a record's text (already known to start with v=spf1); PermanentError on bad syntax."""
    parts = text.split(" ")
    terms: list[Term] = []
    modifiers: dict[str, str] = {}
    for part in parts[1:]:
        if not part:
            continue
        modifier = _MODIFIER.match(part)
        if modifier and ":" not in modifier.group(1):
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if name in modifiers:
                    raise PermanentError(f"{name}= appears twice")
                _check_domain_spec(value, part)
                modifiers[name] = value
            continue  # unknown modifiers are ignored (§6)
        terms.append(_term(part))
    return Record(tuple(terms), modifiers.get("redirect"), modifiers.get("exp"))


def _term(part: str) -> Term:
    match = _MECHANISM.match(part)
    if not match:
        raise PermanentError(f"{part!r} is not a mechanism")
    qualifier = QUALIFIERS.get(match.group(1), Result.PASS)
    name = match.group(2).lower()
    separator, rest = match.group(3), match.group(4) or ""
    if name == "all":
        if separator:
            raise PermanentError(f"{part!r}: all takes no argument")
        return Term(qualifier, name)
    if name in ("ip4", "ip6"):
        if separator != ":":
            raise PermanentError(f"{part!r}: {name} needs an address")
        return _address_term(qualifier, name, rest, part)
    if name not in _WITH_DOMAIN:
        raise PermanentError(f"{part!r}: unknown mechanism {name!r}")
    domain, cidr4, cidr6 = "", None, None
    if separator == ":":
        domain, cidr4, cidr6 = _split_cidr(rest, part, name in ("a", "mx"))
        if not domain:
            raise PermanentError(f"{part!r}: empty domain")
        _check_domain_spec(domain, part)
    elif separator == "/":
        if name not in ("a", "mx"):
            raise PermanentError(f"{part!r}: {name} takes no prefix length")
        _, cidr4, cidr6 = _split_cidr("/" + rest, part, True)
    if name in _NEEDS_DOMAIN and not domain:
        raise PermanentError(f"{part!r}: {name} needs a domain")
    return Term(qualifier, name, domain, cidr4, cidr6)


def _split_cidr(text: str, part: str, allowed: bool) -> tuple[str, int | None, int | None]:
    match = _CIDR.match(text)
    assert match is not None  # the pattern matches any string
    domain, four, six = match.group(1), match.group(2), match.group(3)
    if (four or six) and not allowed:
        raise PermanentError(f"{part!r}: this mechanism takes no prefix length")
    if "/" in domain:
        raise PermanentError(f"{part!r}: bad prefix length")
    cidr4 = int(four) if four else None
    cidr6 = int(six) if six else None
    if (cidr4 is not None and cidr4 > 32) or (cidr6 is not None and cidr6 > 128):
        raise PermanentError(f"{part!r}: prefix length out of range")
    return domain, cidr4, cidr6


def _address_term(qualifier: Result, name: str, rest: str, part: str) -> Term:
    address, slash, length = rest.partition("/")
    try:
        parsed = ipaddress.IPv4Address(address) if name == "ip4" else ipaddress.IPv6Address(address)
    except ValueError:
        raise PermanentError(f"{part!r}: {address!r} is not an {'IPv4' if name == 'ip4' else 'IPv6'} address") from None
    maximum = 32 if name == "ip4" else 128
    if slash and (not length.isdigit() or len(length) > 3 or int(length) > maximum or (length.startswith("0") and length != "0")):
        raise PermanentError(f"{part!r}: bad prefix length")
    bits = int(length) if slash else maximum
    return Term(qualifier, name, str(parsed), bits if name == "ip4" else None, bits if name == "ip6" else None)


def _check_domain_spec(spec: str, part: str) -> None:
    """Macros must be well formed; a literal domain must end in a proper label (§7.1)."""
    rest = _MACRO.sub("", spec.replace("%%", "").replace("%_", "").replace("%-", ""))
    if "%" in rest:
        raise PermanentError(f"{part!r}: bad macro")
    if not _MACRO.search(spec) and not valid_domain(spec):
        raise PermanentError(f"{part!r}: {spec!r} is not a domain name")


def expand(spec: str, state: _State, domain: str) -> str:
    """Macro expansion (§7) of a domain-spec, then trimmed to 253 characters from the left."""

    def one(match: re.Match[str]) -> str:
        letter, digits, reverse, delimiters = match.group(1).lower(), match.group(2), match.group(3), match.group(4)
        local, _, sender_domain = state.sender.rpartition("@")
        values = {
            "s": state.sender,
            "l": local or "postmaster",
            "o": sender_domain,
            "d": domain,
            "i": _dotted(state.address),
            "p": "unknown",
            "h": state.helo,
            "v": "in-addr" if state.address.version == 4 else "ip6",
            "c": str(state.address),
            "r": "unknown",
            "t": "0",
        }
        parts = re.split("[" + re.escape(delimiters or ".") + "]", values[letter])
        if reverse:
            parts.reverse()
        if digits:
            if int(digits) == 0:
                raise PermanentError("a macro keeps 0 labels")
            parts = parts[-int(digits):]
        return ".".join(parts)

    text = _MACRO.sub(one, spec).replace("%%", "%").replace("%_", " ").replace("%-", "%20")
    text = text.rstrip(".")  # a domain-spec may end in a dot (§7.1)
    while len(text) > 253 and "." in text:
        text = text.split(".", 1)[1]
    return text


def _dotted(address: Address) -> str:
    if address.version == 4:
        return str(address)
    return ".".join(address.exploded.replace(":", ""))


async def check_host(lookup: Lookup, address: str, domain: str, sender: str = "", helo: str = "") -> Evaluation:
    """The SPF result for mail from `address` with the envelope domain `domain` (§4)."""
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        parsed = parsed.ipv4_mapped
    state = _State(lookup, parsed, sender or f"postmaster@{domain}", helo or domain, seen=[domain.lower()])
    try:
        found = await _fetch(state, domain)
        if found is None:
            return Evaluation(Result.NONE, reason=f"{domain} publishes no SPF record")
        result, reason = await _evaluate(state, domain, found)
    except TemporaryDnsError as error:
        return Evaluation(Result.TEMPERROR, state.record, f"DNS: {error}", state.lookups)
    except PermanentError as error:
        return Evaluation(Result.PERMERROR, state.record, str(error), state.lookups, error.problem)
    return Evaluation(result, state.record, reason, state.lookups)


async def _fetch(state: _State, domain: str) -> str | None:
    """The one SPF record of a domain as text, None when there is none (§4.3-4.5)."""
    if not valid_domain(domain):
        return None
    records = spf_records(await state.lookup.txt(domain))
    if not records:
        return None
    if state.record is None:
        state.record = " | ".join(shown(record) for record in records)
    if len(records) > 1:
        raise PermanentError(f"{domain} publishes {len(records)} SPF records (only one is allowed)", Problem.RECORDS)
    return decode(records[0])


async def _evaluate(state: _State, domain: str, text: str) -> tuple[Result, str]:
    record = parse(text)
    for term in record.terms:
        if await _matches(state, domain, term):
            return term.qualifier, f"{domain}: {_show(term)} matched"
    if record.redirect is not None:
        state.count()
        target = expand(record.redirect, state, domain)
        found = await _fetch(state, target) if valid_domain(target) else None
        if found is None:
            raise PermanentError(f"redirect={target}: no SPF record there", Problem.MISSING)
        return await _evaluate(state, target, found)
    return Result.NEUTRAL, f"{domain}: no term matched"


def _show(term: Term) -> str:
    qualifier = {v: k for k, v in QUALIFIERS.items()}[term.qualifier] if term.qualifier != Result.PASS else ""
    argument = f":{term.argument}" if term.argument else ""
    return f"{qualifier}{term.name}{argument}"


async def _matches(state: _State, domain: str, term: Term) -> bool:
    address = state.address
    if term.name == "all":
        return True
    if term.name in ("ip4", "ip6"):
        length = term.cidr4 if term.name == "ip4" else term.cidr6
        network = ipaddress.ip_network(f"{term.argument}/{length}", strict=False)
        return address.version == network.version and address in network
    state.count()
    target = expand(term.argument, state, domain) if term.argument else domain
    if term.name == "include":
        if not valid_domain(target):
            raise PermanentError(f"include:{target} is not a domain name")
        if target.lower() in state.seen:
            raise PermanentError(f"include:{target} loops back to a record being evaluated", Problem.LOOKUPS)
        found = await _fetch(state, target)
        if found is None:
            raise PermanentError(f"include:{target}: no SPF record there", Problem.MISSING)
        state.seen.append(target.lower())
        result, _ = await _evaluate(state, target, found)  # temperror and permerror propagate as raised
        state.seen.pop()
        return result == Result.PASS
    if not valid_domain(target):
        state.void([])
        return False
    if term.name == "exists":
        found = await state.lookup.addresses(target, 4)  # exists always asks for A (§5.7)
        state.void(found)
        return bool(found)
    if term.name == "a":
        found = await state.lookup.addresses(target, address.version)
        state.void(found)
        return _in_any(address, found, term)
    if term.name == "mx":
        exchanges = await state.lookup.mx(target)
        state.void(exchanges)
        if len(exchanges) > MX_ADDRESS_LIMIT:
            raise PermanentError(f"mx:{target} has more than {MX_ADDRESS_LIMIT} MX hosts", Problem.LOOKUPS)
        for exchange in exchanges:
            if _in_any(address, await state.lookup.addresses(exchange, address.version), term):
                return True
        return False
    # ptr (§5.5, "do not use"): a name of the address whose own addresses include it, under target.
    names = await state.lookup.ptr(str(address))
    state.void(names)
    for name in names[:MX_ADDRESS_LIMIT]:
        name = name.rstrip(".").lower()
        if name == target.lower() or name.endswith("." + target.lower()):
            if address.compressed in [ipaddress.ip_address(a).compressed for a in await state.lookup.addresses(name, address.version)]:
                return True
    return False


def _in_any(address: Address, found: list[str], term: Term) -> bool:
    length = term.cidr4 if address.version == 4 else term.cidr6
    for text in found:
        try:
            network = ipaddress.ip_network(f"{text}/{length if length is not None else address.max_prefixlen}", strict=False)
        except ValueError:
            continue
        if network.version == address.version and address in network:
            return True
    return False
