"""Internationalised addresses: the form we store, the forms we send, the form we show.

Stored: the local part as the sender wrote it (UTF-8 allowed, RFC 6531) and the domain as an A-label
(IDNA 2008, RFC 5891), so that routing, suppression and grouping see one spelling of a domain. Shown:
the domain as a U-label. Sent: A-labels to every server, U-labels only inside an SMTPUTF8 transaction.

The ASCII fast path uses the standard library only: the sendmail command imports this module on every
mail() call, and `idna` (40 ms to import) is loaded only for a domain that needs it.
"""

from __future__ import annotations

import unicodedata

MAX_LABEL = 63  # octets of one A-label (RFC 1035 §2.3.4)
MAX_NAME = 253  # octets of a domain name in text form, without the final dot

# UTS #39 "highly restrictive": one script per label, or Latin with one of the CJK combinations.
_ALLOWED_MIXES = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)
_NEUTRAL_SCRIPTS = frozenset({"Common", "Inherited"})
# Letters that are not characters: surrogates (undecodable bytes), private use, unassigned,
# format controls (invisible joiners outside IDNA's contexts), separators and controls.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


class AddressError(ValueError):
    """Not an address we can carry; the message says why in words a customer understands."""


def is_ascii_local(address: str) -> bool:
    """True when the local part is ASCII: the address can travel without SMTPUTF8 (its domain as an A-label)."""
    return address.rpartition("@")[0].isascii()


def check_local_text(local: str) -> None:
    """Refuse characters that cannot be part of a UTF-8 local part (RFC 6531 §3.3 UTF8-non-ascii)."""
    for ch in local:
        if ch.isascii():
            continue
        if ch == "\ufffd" or unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            if unicodedata.category(ch) == "Cs" or ch == "\ufffd":
                raise AddressError("the address is not valid UTF-8")
            raise AddressError(f"the local part holds an invisible or unassigned character (U+{ord(ch):04X})")
    if len(local.encode("utf-8")) > 64:
        raise AddressError("the local part is longer than 64 octets")


def to_a_label(domain: str) -> str:
    """The A-label form of a domain written in Unicode or punycode; raises AddressError with the reason.

    Upper case and full-width dots are mapped as browsers do (UTS #46); every label must then be a
    valid IDNA 2008 label of one script (no Cyrillic "а" inside a Latin name)."""
    if any(unicodedata.category(ch) == "Cs" for ch in domain) or "\ufffd" in domain:
        raise AddressError("the domain is not valid UTF-8")
    import idna  # here: only a domain that is not plain ASCII needs it

    try:
        ascii_name = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise AddressError(f"the domain {_shown(domain)} is not a valid internationalised name ({_idna_reason(error)})") from None
    except UnicodeError as error:
        raise AddressError(
            f"the domain {_shown(domain)} is not a valid internationalised name ({error.reason or error})"
        ) from None
    labels = ascii_name.split(".")
    for label in labels:
        if len(label) > MAX_LABEL:
            raise AddressError(f"a label of {_shown(domain)} is longer than {MAX_LABEL} octets in its A-label form")
        if label.startswith("xn--"):
            check_one_script(idna.decode(label))
    if len(ascii_name) > MAX_NAME:
        raise AddressError(f"the domain {_shown(domain)} is longer than {MAX_NAME} octets in its A-label form")
    return ascii_name


def _shown(domain: str) -> str:
    """A domain quoted for an error text; long ones cut, so an SMTP reply stays within its 512 octets."""
    return repr(domain if len(domain) <= 60 else domain[:57] + "...")


def _idna_reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text[:120]


def check_one_script(label: str) -> None:
    """Refuse a label that mixes scripts (UTS #39 highly restrictive), the usual look-alike trick."""
    import unicodedataplus  # here: only a Unicode label needs it

    scripts = {unicodedataplus.script(ch) for ch in label} - _NEUTRAL_SCRIPTS
    if len(scripts) <= 1 or any(scripts <= mix for mix in _ALLOWED_MIXES):
        return
    raise AddressError(f"the domain label {label!r} mixes scripts ({', '.join(sorted(scripts))})")


def stored(address: str) -> str:
    """The form the store keeps an address in (local part as written, an IDN domain as its A-label);
    raises AddressError with the reason. ASCII addresses come back unchanged."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise AddressError("an address is local-part@domain")
    check_local_text(local)
    return f"{local}@{to_a_label(domain)}" if needs_idna(domain) else address


def needs_idna(domain: str) -> bool:
    """Whether the domain must go through IDNA: Unicode, or a punycode label to validate."""
    return not domain.isascii() or "xn--" in domain.lower()


def u_label(domain: str) -> str:
    """The Unicode form of a stored domain; a name that does not decode is returned as it is."""
    if "xn--" not in domain.lower():
        return domain
    import idna

    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return domain


def display(address: str) -> str:
    """An address as people read it: the domain in Unicode (never raises; anything odd is shown as stored)."""
    if not isinstance(address, str) or "@" not in address:
        return address
    local, _, domain = address.rpartition("@")
    shown = u_label(domain)
    return address if shown == domain else f"{local}@{shown}"


def for_smtputf8(address: str) -> str:
    """The address as sent in an SMTPUTF8 transaction: domain as a U-label (RFC 6531 §3.2)."""
    return display(address)


def for_ascii_server(address: str) -> str:
    """The address as sent outside SMTPUTF8: the domain as an A-label (stored that way since intake)."""
    local, at, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}{at}{to_a_label(domain)}"
    except AddressError:
        return address


def search_forms(text: str) -> tuple[str, ...]:
    """What a typed search for an address matches in the queue: the text, and, when it holds Unicode
    domain labels, the same text with those labels as A-labels (bücher.example finds xn--bcher-kva.example).
    A part of a label has no A-label of its own, so only whole labels are translated."""
    if text.isascii():
        return (text,)
    local, at, rest = text.rpartition("@")
    labels = rest.split(".")
    import idna

    converted = []
    for label in labels:
        try:
            converted.append(label if label.isascii() else idna.alabel(label.lower()).decode("ascii"))
        except (idna.IDNAError, UnicodeError):
            converted.append(label)
    other = f"{local}{at}{'.'.join(converted)}"
    return (text,) if other == text else (text, other)
