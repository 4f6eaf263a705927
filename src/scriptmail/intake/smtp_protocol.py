"""The SMTP conversation both submission paths share: aiosmtpd's protocol, trimmed, and the envelope checks.

The network server (`intake/smtp_server.py`) and `sendmail -bs` (`intake/sendmail_smtp.py`) speak
through the same class, so they share the command and line limits, the address rules and the
replies. No store import here: `sendmail -bs` loads this module in the caller's process.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from scriptmail.intake.checks import Refused, check_address
from scriptmail.intake.data_body import END, Body

log = logging.getLogger(__name__)


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

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with the body read in pieces up to each ".\\r\\n" instead of a line at a
        time (`intake/data_body.py`); the same checks before it, the same replies after."""
        if self._decode_data:
            await super().smtp_DATA(arg)  # both our servers keep bytes; a decoding one reads as aiosmtpd does
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        body = Body(self.data_size_limit, self.line_length_limit)
        reader = self._reader
        while True:
            try:
                piece = await reader.readuntil(END)
            except asyncio.LimitOverrunError as overrun:
                # No ".\\r\\n" within the reader's limit: take what was searched; the reader keeps
                # the last two bytes, so a terminator across the cut is still found.
                piece = await reader.read(overrun.consumed)
            except asyncio.IncompleteReadError:
                log.info("%r connection closed during DATA", self.session.peer)
                self._writer.close()
                return
            except asyncio.CancelledError:
                log.info("connection lost during DATA")
                self._writer.close()
                raise
            if body.feed(piece):
                break
        if body.problem is not None:
            await self.push(body.problem.value)
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = body.content()
        status = await self._call_handler_hook("DATA")  # MISSING when the handler has no DATA hook
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


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
