"""The SMTP submission server (aiosmtpd): who is sending, what they may send, and the 250.

A client is a hosting either by SMTP AUTH (PLAIN/LOGIN, only over TLS unless on loopback) or by
connecting from one of `intake.trusted_networks`. Anyone else may talk but not relay.
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import logging
import ssl
from base64 import b64decode
from collections.abc import Callable

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from scriptmail.intake.accept import Acceptor, Provenance
from scriptmail.intake.checks import Refused, check_data
from scriptmail.intake.smtp_protocol import SubmissionSMTP, hook_names, mail_refusal, peer_ip, rcpt_refusal
from scriptmail.model import Hosting, Origin
from scriptmail.store.writer import StoreUnavailable

log = logging.getLogger(__name__)

AUTH_FAILURE_DELAY = 1.0  # slows password guessing on one connection; argon2 does the rest


class TrustedNetworks:
    """Source network → hosting name, most specific network first."""

    def __init__(self, table: dict[str, str]) -> None:
        networks = [(ipaddress.ip_network(net, strict=False), name) for net, name in table.items()]
        self._networks = sorted(networks, key=lambda item: item[0].prefixlen, reverse=True)

    def hosting_for(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str | None:
        if address is None:
            return None
        for network, name in self._networks:
            if address.version == network.version and address in network:
                return name
        return None


class SubmissionHandler:
    """aiosmtpd hooks: identity, envelope checks and the durable 250."""

    def __dir__(self) -> tuple[str, ...]:
        # Same reason as SubmissionSMTP.__dir__: aiosmtpd scans the handler on every connection.
        return hook_names(type(self), ("handle_", "auth_"))

    def __init__(self, acceptor: Acceptor, trusted: TrustedNetworks, max_recipients: int) -> None:
        self._acceptor = acceptor
        self._trusted = trusted
        self._max_recipients = max_recipients

    # --- identity -------------------------------------------------------------------------

    async def _hosting(self, session: Session) -> Hosting | None:
        if session.authenticated and isinstance(session.auth_data, Hosting):
            return session.auth_data
        name = self._trusted.hosting_for(peer_ip(session))
        if name is None:
            return None
        return await self._acceptor.hosting_by_name(name)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                return AuthResult(success=False, handled=False, message="501 5.5.2 cannot decode base64")
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            return AuthResult(success=False, handled=False, message="501 5.5.2 malformed PLAIN credentials")
        return await self._check(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth("Username:")
        else:
            try:
                login = b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                return AuthResult(success=False, handled=False, message="501 5.5.2 cannot decode base64")
        if not isinstance(login, bytes):
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check(server, login, password)

    async def _check(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        try:
            name = login.decode("utf-8")
            secret = password.decode("utf-8")
        except UnicodeDecodeError:
            name, secret = "", ""
        try:
            hosting = await self._acceptor.verify_password(name, secret) if name else None
        except StoreUnavailable:
            return AuthResult(success=False, handled=False, message="454 4.7.0 temporary authentication failure")
        if hosting is None:
            await asyncio.sleep(AUTH_FAILURE_DELAY)
            log.info("AUTH failed for %r from %s", name[:64], server.session.peer)
            return AuthResult(success=False, handled=False, message="535 5.7.8 authentication credentials invalid")
        return AuthResult(success=True, auth_data=hosting)

    # --- envelope -------------------------------------------------------------------------

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        try:
            hosting = await self._hosting(session)
        except StoreUnavailable:
            return "451 4.3.0 temporary failure, please try again later"
        if hosting is None:
            return "530 5.7.0 authentication required"
        refusal, address = mail_refusal(address, bool(envelope.smtp_utf8))
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 sender ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        refusal, address = rcpt_refusal(envelope, address, self._max_recipients)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 recipient ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        try:
            check_data(data)
            hosting = await self._hosting(session)
            if hosting is None:
                return "530 5.7.0 authentication required"
            peer = peer_ip(session)
            queue_id = await self._acceptor.accept(
                hosting,
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                data,
                Provenance(
                    origin=Origin.SMTP,
                    client=f"{peer}" if peer else "unknown",
                    protocol="ESMTP" + ("S" if session.ssl else "") + ("A" if session.authenticated else ""),
                ),
            )
        except Refused as refused:
            return refused.reply
        except StoreUnavailable as error:
            log.warning("cannot commit a message from %s: %s", session.peer, error)
            return "451 4.3.0 queue temporarily unavailable, please try again later"
        return f"250 2.0.0 queued as {queue_id}"


def make_server_factory(
    handler: SubmissionHandler,
    hostname: str,
    max_size: int,
    tls_context: Callable[[], ssl.SSLContext] | None,
) -> Callable[[], SubmissionSMTP]:
    """One aiosmtpd protocol per connection; the handler's auth_PLAIN/auth_LOGIN replace aiosmtpd's.

    `tls_context` is asked at every connection, so a renewed certificate serves the next client.
    """

    def factory() -> SubmissionSMTP:
        return SubmissionSMTP(
            handler,
            hostname=hostname,
            ident="scriptmail",
            data_size_limit=max_size,
            enable_SMTPUTF8=True,  # RFC 6531: UTF-8 addresses; check_address decides what is acceptable
            decode_data=False,
            tls_context=tls_context() if tls_context is not None else None,
            require_starttls=False,
            auth_required=False,
            auth_require_tls=True,
            timeout=300,
            loop=asyncio.get_running_loop(),  # else aiosmtpd looks the loop up, with warnings filters, per connection
        )

    return factory
