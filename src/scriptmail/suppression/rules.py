"""Pure decisions of the suppression list: which failures put an address on it, what an entry
looks like, and whether an address matches one. No I/O: the store applies them.

Domains are kept as A-labels, as the queue keeps them (international.addresses): an entry typed
`josé@correo.españa.es` is stored `josé@correo.xn--espaa-rta.es`, and an address is turned into that
form before it is matched, so either spelling finds the other."""

from __future__ import annotations

import enum
import fnmatch
import functools
import re
from dataclasses import dataclass

from scriptmail.control.policy import is_unknown_user
from scriptmail.international.addresses import AddressError, check_local_text, needs_idna, to_a_label, u_label

DAY = 86400.0
REQUEUE_WINDOW = 72 * 3600.0  # mail suppressed this recently can be sent again when its entry is removed


class Reason(enum.StrEnum):
    """Why an address is on a list."""

    NO_SUCH_USER = "no-such-user"  # the server said the mailbox does not exist or is disabled
    REPEATED = "repeated-failure"  # failed permanently twice within a day, for any reason
    MANUAL = "manual"  # added by the customer or the operator


class Kind(enum.StrEnum):
    ADDRESS = "address"
    DOMAIN = "domain"
    PATTERN = "pattern"  # shell-style, platform list only: *@spamtrap.example, trap-*@*.example.org


class EntryError(ValueError):
    """A value that cannot be a suppression entry; the message says why."""


# RFC 3463: 5.1.10 "recipient address has null MX"; 5.2.1 "mailbox disabled" when the text says so.
_NULL_MX = re.compile(r"\b5\.1\.10\b")
_DISABLED = re.compile(r"\b5\.2\.1\b.*\b(disabled|inactive|suspended|deactivated|not active)\b", re.IGNORECASE | re.DOTALL)
_ADDRESS = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$")
_DOMAIN = re.compile(r"^[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$")
_PATTERN = re.compile(r"^[a-z0-9.!#$%&'+/=^_`{|}~*?\u0080-\U0010ffff-]{1,64}@[a-z0-9.*?-]{1,253}$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Second-level names that country registries sell under (co.uk, com.br...): not one owner's domain.
_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gob", "gov", "ltd", "ne", "net", "or", "org", "plc"})


def is_no_such_user(code: int | None, text: str) -> bool:
    """A permanent failure saying the mailbox does not exist (5.1.1 and its common texts), the
    domain takes no mail (5.1.10) or the mailbox is disabled (5.2.1 with those words)."""
    if code is None or not 500 <= code < 600:
        return False
    return is_unknown_user(code, text) or bool(_NULL_MX.search(text) or _DISABLED.search(text))


def reason_for(code: int | None, text: str, earlier_permanent_failures: int) -> Reason | None:
    """Whether a permanent failure puts the address on the hosting's list, and why.

    `earlier_permanent_failures` counts the address's other permanent failures in the last day."""
    if code is None or not 500 <= code < 600:
        return None
    if is_no_such_user(code, text):
        return Reason.NO_SUCH_USER
    return Reason.REPEATED if earlier_permanent_failures >= 1 else None


def entry_of(value: str, allow_patterns: bool) -> tuple[Kind, str]:
    """The kind and normalised form of an entry (lower case, domains as A-labels); EntryError when it is none.

    A pattern that could match too widely is refused: it would stop the mail of many sites. Its
    domain must end in a literal name with a dot (spamtrap.example), wildcards only before it."""
    text = value.strip().lower()
    if not text or len(text) > 320 or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise EntryError(f"{value!r} is not an address, a domain or a pattern")
    if "*" in text or "?" in text:
        if not allow_patterns:
            raise EntryError(f"{value!r}: patterns are only for the platform's list")
        text = _pattern_a_labels(value, text)
        if not _PATTERN.match(text):
            raise EntryError(f"{value!r} is not a pattern of the form local@domain (with * and ?)")
        problem = too_wide(text)
        if problem:
            raise EntryError(f"{value!r} would match too widely: {problem}")
        return Kind.PATTERN, text
    if "@" in text and not text.startswith("@"):
        local, _, domain = text.rpartition("@")
        try:
            check_local_text(local)
            address = f"{local}@{_a_label(domain)}"
        except AddressError as error:
            raise EntryError(f"{value!r} is not an e-mail address: {error}") from None
        if not _ADDRESS.match(address):
            raise EntryError(f"{value!r} is not an e-mail address")
        return Kind.ADDRESS, address
    try:
        name = _a_label(text.lstrip("@").rstrip("."))
    except AddressError as error:
        raise EntryError(f"{value!r} is not a domain name: {error}") from None
    if not _DOMAIN.match(name):
        raise EntryError(f"{value!r} is not a domain name")
    return Kind.DOMAIN, name


def too_wide(pattern: str) -> str:
    """Why a pattern (local@domain, lower-case) would match too much, or "" when it is narrow
    enough: the last two labels of its domain are literal, like spamtrap.example in
    *@spamtrap.example or trap-*@*.example.org. Probing sample addresses cannot prove this
    (*@*e* passed four of them)."""
    domain = pattern.rpartition("@")[2]
    labels = domain.split(".")
    if any(not label for label in labels):
        return "the domain has an empty label"
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels[-2:]):
        return "the domain must end in a name with a dot and no * or ? (like *@spamtrap.example or trap-*@*.example.org)"
    second, top = labels[-2:]
    if len(top) == 2 and second in _SECOND_LEVEL and (len(labels) < 3 or not _LABEL.match(labels[-3])):
        return f"{second}.{top} is a registry's suffix: name the domain under it (like *@spamtrap.{second}.{top})"
    return ""


@functools.lru_cache(maxsize=4096)
def pattern_refusal(pattern: str) -> str:
    """Why a stored pattern would be refused today, or "" when it is fine. Patterns stored before
    the width guard existed, or written straight into the store, are not applied when refused."""
    if not _PATTERN.match(pattern):
        return "not a pattern of the form local@domain (with * and ?)"
    problem = too_wide(pattern)
    return f"it would match too widely: {problem}" if problem else ""


def _a_label(domain: str) -> str:
    return to_a_label(domain).lower() if needs_idna(domain) else domain


def _pattern_a_labels(value: str, text: str) -> str:
    """A pattern's Unicode domain labels as A-labels. A wildcard inside a Unicode label has no A-label
    form (punycode moves the letters), so it is refused with the reason."""
    local, at, domain = text.rpartition("@")
    if not at or domain.isascii():
        return text
    labels = []
    for label in domain.split("."):
        if label.isascii():
            labels.append(label)
        elif "*" in label or "?" in label:
            raise EntryError(f"{value!r}: a wildcard cannot stand inside a non-ASCII label ({label!r}); write that label whole")
        else:
            try:
                labels.append(to_a_label(label).lower())
            except AddressError as error:
                raise EntryError(f"{value!r} is not a pattern of the form local@domain: {error}") from None
    return f"{local}@{'.'.join(labels)}"


def lookup_form(value: str) -> str:
    """How a typed value is looked up in a list (never raises): its entry form, else the text in lower case."""
    try:
        return entry_of(value, allow_patterns=True)[1]
    except EntryError:
        return value.strip().lower()


def shown(value: str) -> str:
    """An entry as people read it: its domain in Unicode."""
    local, at, domain = value.rpartition("@")
    if "*" in domain or "?" in domain:
        return f"{local}{at}{'.'.join(u_label(label) for label in domain.split('.'))}"
    return f"{local}{at}{u_label(domain)}"


def matches_pattern(pattern: str, address: str) -> bool:
    """Shell-style match of a whole address, case-insensitive."""
    return fnmatch.fnmatchcase(address.lower(), pattern)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a list, as the claim sees it."""

    scope: int  # the hosting's id; 0 for the platform's list
    value: str
    kind: Kind
    reason: str
    code: int | None
    reply: str
    notified: bool


def match(address: str, hosting_id: int, entries: list[Entry]) -> Entry | None:
    """The entry that suppresses `address` for this hosting, if any: the hosting's own first
    (its reason is the more telling), then the platform's; an address before its domain."""
    address = matching_form(address)
    domain = address.rpartition("@")[2]
    best: tuple[int, Entry] | None = None
    for entry in entries:
        if entry.scope not in (hosting_id, 0):
            continue
        if entry.kind is Kind.ADDRESS:
            hit = entry.value == address
        elif entry.kind is Kind.DOMAIN:
            hit = entry.value == domain
        else:
            hit = entry.scope == 0 and not pattern_refusal(entry.value) and matches_pattern(entry.value, address)
        if not hit:
            continue
        rank = (0 if entry.scope == hosting_id else 3) + (0 if entry.kind is Kind.ADDRESS else 1 if entry.kind is Kind.DOMAIN else 2)
        if best is None or rank < best[0]:
            best = (rank, entry)
    return best[1] if best else None


def matching_form(address: str) -> str:
    """An address as entries are compared with it: lower case, its domain as an A-label (never raises)."""
    address = address.lower()
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{to_a_label(domain).lower()}"
    except AddressError:
        return address


def describe(entry: Entry) -> str:
    """The text a suppressed recipient's log row shows."""
    where = "the platform's suppression list" if entry.scope == 0 else "the hosting's suppression list"
    detail = f" ({entry.reply})" if entry.reply else ""
    return f"not attempted: {entry.value} is on {where}: {entry.reason}{detail}"[:2000]
