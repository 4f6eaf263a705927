"""The SMTP conversation both submission paths share: aiosmtpd's protocol, trimmed, and the envelope checks.

The network server (`intake/smtp_server.py`) and `sendmail -bs` (`intake/sendmail_smtp.py`) speak
through the same class, so they share the command and line limits, the address rules and the
replies. No store import here: `sendmail -bs` loads this module in the caller's process.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress

from aiosmtpd.smtp import SMTP, Envelope, Session

from scriptmail.intake.checks import Refused, check_address


def peer_ip(session: Session) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        try:
            address = ipaddress.ip_address(peer[0].split("%")[0])
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            return address.ipv4_mapped
        return address
    return None


def auth_needs_tls(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    """Passwords cross the network only encrypted; on loopback they never leave the machine."""
    return not (address is not None and address.is_loopback)


@functools.cache
def hook_names(cls: type, prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(name for name in dir(cls) if name.startswith(prefixes)))


class SubmissionSMTP(SMTP):
    """aiosmtpd's server with AUTH allowed in clear text on loopback only."""

    # aiosmtpd's __init__ finds commands and AUTH mechanisms with inspect.getmembers(self), which
    # evaluates every attribute of the instance on every connection (a sixth of intake's CPU under
    # load). Listing only the names it looks for gives it the same answer for far less work.
    def __dir__(self) -> tuple[str, ...]:
        return hook_names(type(self), ("smtp_", "auth_"))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """Split `<address> params` without the email header parser.

        aiosmtpd's version builds a typing.Protocol class and runs the RFC 5322 parser on every
        MAIL and RCPT; every address is checked strictly by check_address right after, so a plain
        split is enough here. A source route (`<@a,@b:user@dom>`) is dropped, as RFC 5321 §3.3 asks.
        """
        if not arg:
            return "", ""
        text = arg.lstrip()
        if text.startswith("<"):
            end = text.find(">")
            if end < 0:
                return None, None
            address, rest = text[1:end] or "<>", text[end + 1 :]  # "<>": the null path, as aiosmtpd gives it
            if address.startswith("@") and ":" in address:
                address = address.rpartition(":")[2]
        else:
            address, _, rest = text.partition(" ")
            rest = " " + rest if rest else ""
        return address, rest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # aiosmtpd has one switch for the whole server; we decide per connection.
        self._auth_require_tls = auth_needs_tls(peer_ip(self.session))


def _needs_declared_utf8(address: str, smtputf8: bool) -> str | None:
    # RFC 6531 §3.4: a non-ASCII address is used only in a transaction that said SMTPUTF8 on MAIL.
    if smtputf8 or address.isascii():
        return None
    return "553 5.6.7 a non-ASCII address needs the SMTPUTF8 parameter on MAIL FROM"


def mail_refusal(address: str, smtputf8: bool = False) -> tuple[str | None, str]:
    """(the reply refusing MAIL FROM, or None to accept) and the address as stored (IDN domain as A-label)."""
    refusal = _needs_declared_utf8(address, smtputf8)
    if refusal:
        return refusal, address
    try:
        return None, check_address(address, role="sender")
    except Refused as refused:
        return refused.reply, address


def rcpt_refusal(envelope: Envelope, address: str, max_recipients: int) -> tuple[str | None, str]:
    """(the reply refusing RCPT TO: no MAIL yet, too many, a bad address; or None) and the address as stored."""
    if envelope.mail_from is None:
        return "503 5.5.1 MAIL first", address
    if len(envelope.rcpt_tos) >= max_recipients:
        return f"452 4.5.3 too many recipients (at most {max_recipients} per message)", address
    refusal = _needs_declared_utf8(address, bool(envelope.smtp_utf8))
    if refusal:
        return refusal, address
    try:
        return None, check_address(address)
    except Refused as refused:
        return refused.reply, address
