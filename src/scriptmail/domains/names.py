"""Domain names as customers type them: Unicode or punycode in, the A-label stored, the U-label shown.

IDNA 2008 (RFC 5890/5891) through the `idna` package, with UTS #46 mapping so that upper case and
full-width dots typed in a form are accepted the way browsers accept them.
"""

from __future__ import annotations

import re

import idna

_LDH = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class DomainNameError(ValueError):
    """The text is not a domain name we can sign for; the message says why."""


def normalise(text: str) -> str:
    """The A-label form (lower-case ASCII) of a domain typed in Unicode or punycode."""
    if not isinstance(text, str):
        raise DomainNameError("a domain name must be text")
    name = text.strip().rstrip(".")
    if not name:
        raise DomainNameError("the domain name is empty")
    if len(name) > 253 * 4 or any(ch.isspace() or ch in "@/\\:;,\"'<>()[]" for ch in name) or "\x00" in name:
        raise DomainNameError(f"{text!r} is not a domain name")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise DomainNameError(f"{text!r} is not a valid internationalised domain name: {error}") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise DomainNameError(f"{text!r} has no dot: a sending domain looks like example.com")
    if len(ascii_name) > 253 or not all(_LDH.match(label) for label in labels):
        raise DomainNameError(f"{text!r} is not a domain name")
    if labels[-1].isdigit():
        raise DomainNameError(f"{text!r} is an address, not a domain name")
    return ascii_name


def display(a_label: str) -> str:
    """The Unicode form to show; a name that does not decode is shown as stored."""
    try:
        return idna.decode(a_label)
    except (idna.IDNAError, UnicodeError):
        return a_label


def from_domain(address_domain: str) -> str:
    """A From address's domain as a lookup key (A-label), or "" when it is not a usable name; never raises."""
    name = address_domain.strip().rstrip(".").lower()
    if not name:
        return ""
    if name.isascii():
        return name if all(_LDH.match(label) for label in name.split(".")) and len(name) <= 253 else ""
    try:
        return normalise(name)
    except DomainNameError:
        return ""
