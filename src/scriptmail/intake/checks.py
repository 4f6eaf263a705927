"""Message checks: pure decisions on addresses and message data, tested without a network.

Every refusal is a `Refused` carrying the SMTP reply; the sendmail side maps it to a sysexits
code. Only stdlib imports: the sendmail command loads this module on every PHP mail() call.
"""

from __future__ import annotations

import re


class Refused(Exception):
    """Input refused; `reply` is the full SMTP reply line (code, enhanced code, text)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply

    @property
    def code(self) -> int:
        return int(self.reply[:3])

    @property
    def text(self) -> str:
        return self.reply[4:]


# RFC 5321 §4.5.3.1: local part 64, domain 255, path 256 octets.
MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_PATH = 256

_ATOM = r"[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+"
# '%' and '!' are legal atext but are the classic relay tricks (user%dom@host, dom!user);
# no web script needs them, so the local part allows neither.
_LOCAL_RE = re.compile(rf"^{_ATOM}(\.{_ATOM})*$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")


def check_address(address: str, *, role: str = "recipient") -> str:
    """Return the address as we store it if it is a plain `local@domain` we may relay to, else raise Refused.

    A UTF-8 local part is kept as written (RFC 6531); a domain in Unicode or punycode comes back as
    its A-label (RFC 5891), so one domain has one spelling in the queue.
    """
    code = "553 5.1.3" if role == "recipient" else "553 5.1.7"
    if address in ("", "<>"):
        raise Refused(f"{code} the null {role} <> is not accepted for submission")
    if not address.isascii():
        return _check_international(address, code, role)
    if len(address) > MAX_PATH:
        raise Refused(f"{code} {role} address longer than {MAX_PATH} octets")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in address):
        raise Refused(f"{code} {role} address contains spaces or control characters")
    if address.startswith("@"):
        raise Refused(f"{code} source routes (@host:user@domain) are not accepted")
    if address.startswith('"') or '"' in address:
        raise Refused(f"{code} quoted local parts are not accepted")
    if address.count("@") != 1:
        if "!" in address and "@" not in address:
            raise Refused(f"{code} bang paths (domain!user) are not accepted")
        raise Refused(f"{code} {role} address must be local@domain")
    local, _, domain = address.partition("@")
    if "%" in local or "!" in local:
        raise Refused(f"{code} '%' and '!' routing in the local part is not accepted")
    if not local or len(local) > MAX_LOCAL or not _LOCAL_RE.match(local):
        raise Refused(f"{code} invalid local part in {role} address")
    if domain.startswith("["):
        raise Refused(f"{code} address literals ([ip]) are not accepted")
    if len(domain) > MAX_DOMAIN or not _DOMAIN_RE.match(domain):
        raise Refused(f"{code} invalid domain in {role} address")
    if "xn--" in domain.lower():
        return _check_international(address, code, role)
    return address


_UTF8_LOCAL_RE = re.compile(r"^[^\x00-\x20\x7f\"(),:;<>@\[\\\]%!]+$")  # atext plus UTF8-non-ascii (RFC 6531 §3.3)


def _check_international(address: str, code: str, role: str) -> str:
    """The slow path, for an address with a UTF-8 local part or an IDN domain."""
    from scriptmail.international.addresses import AddressError, check_local_text, to_a_label

    if any(ord(ch) < 33 or ord(ch) == 127 for ch in address):
        raise Refused(f"{code} {role} address contains spaces or control characters")
    if address.startswith("@"):
        raise Refused(f"{code} source routes (@host:user@domain) are not accepted")
    if '"' in address:
        raise Refused(f"{code} quoted local parts are not accepted")
    if address.count("@") != 1:
        raise Refused(f"{code} {role} address must be local@domain")
    local, _, domain = address.partition("@")
    if "%" in local or "!" in local:
        raise Refused(f"{code} '%' and '!' routing in the local part is not accepted")
    try:
        check_local_text(local)
        if not local or ".." in local or local.startswith(".") or local.endswith(".") or not _UTF8_LOCAL_RE.match(local):
            raise Refused(f"{code} invalid local part in {role} address")
        if domain.startswith("["):
            raise Refused(f"{code} address literals ([ip]) are not accepted")
        a_label = to_a_label(domain) if domain and (not domain.isascii() or "xn--" in domain.lower()) else domain
    except AddressError as error:
        raise Refused(f"{code} invalid {role} address: {error}") from None
    if len(a_label) > MAX_DOMAIN or not _DOMAIN_RE.match(a_label):
        raise Refused(f"{code} invalid domain in {role} address")
    stored = f"{local}@{a_label}"
    if len(stored.encode("utf-8")) > MAX_PATH:
        raise Refused(f"{code} {role} address longer than {MAX_PATH} octets")
    return stored


def check_data(data: bytes) -> None:
    """Refuse data that could smuggle a second message past a less strict server.

    aiosmtpd only ends DATA at CRLF.CRLF; what remains is a bare CR, a bare LF or a NUL inside
    the data, which some receivers would read as an end of data. We refuse them (like Postfix's
    smtpd_forbid_bare_newline = reject) rather than guess what the client meant.
    """
    if b"\x00" in data:
        raise Refused("554 5.6.0 NUL characters are not allowed in message data")
    if data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
        raise Refused("554 5.6.0 bare CR or LF in message data; lines must end with CRLF")


_ANY_NEWLINE = re.compile(rb"\r\n|\r|\n")


def normalize_newlines(data: bytes) -> bytes:
    """For the sendmail command: any of LF, CR, CRLF becomes CRLF; NUL bytes are dropped."""
    data = data.replace(b"\x00", b"")
    return _ANY_NEWLINE.sub(b"\r\n", data)


def check_size(size: int, limit: int) -> None:
    if size > limit:
        raise Refused(f"552 5.3.4 message of {size} octets exceeds the limit of {limit}")
