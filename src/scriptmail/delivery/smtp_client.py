"""Sending transactions to one destination over as few connections as possible (aiosmtplib).

Every recipient ends with an Outcome: the server's code and text, or no code when the server
could not be reached or the connection broke before it answered.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiosmtplib

from scriptmail.delivery.routing import Hop, Router
from scriptmail.delivery.wire import fold_long_lines
from scriptmail.international import smtputf8
from scriptmail.international.addresses import for_ascii_server, for_smtputf8
from scriptmail.model import DueRecipient
from scriptmail.mta_sts.decision import TlsDemand
from scriptmail.mta_sts.trust import verifying_context

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Transaction:
    message_id: int
    envelope_from: str
    recipients: tuple[DueRecipient, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    recipient: DueRecipient
    code: int | None
    text: str
    server: str
    started_at: float
    duration: float


@dataclass(frozen=True, slots=True)
class ClientSettings:
    helo_name: str
    connect_timeout: float = 30.0
    command_timeout: float = 300.0
    data_timeout: float = 600.0  # RFC 5321 §4.5.3.2.6: an early give-up causes duplicates
    messages_per_connection: int = 100
    mx_port: int = 25
    idle_seconds: float = 5.0  # how long an unused connection is kept for the next message
    max_idle: int = 10


def _opportunistic_tls() -> ssl.SSLContext:
    # Opportunistic STARTTLS, as MTAs do between each other: encrypt when offered, without
    # refusing a server whose certificate we cannot verify.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(eq=False)
class _Connection:
    client: aiosmtplib.SMTP
    server: str
    used: int = 0
    parked_at: float = 0.0
    site: str = ""


class _Unreachable(Exception):
    def __init__(self, text: str, code: int | None = None, tls: bool = False) -> None:
        super().__init__(text)
        self.code = code
        self.tls = tls  # the server answered, but TLS as an MTA-STS policy wants it failed


class SmtpClient:
    def __init__(self, router: Router, settings: ClientSettings, verified_tls: ssl.SSLContext | None = None) -> None:
        self._router = router
        self._settings = settings
        self._tls = _opportunistic_tls()
        self._verified_tls = verified_tls  # for hosts an MTA-STS policy covers; made when first needed
        self._idle: dict[tuple, list[_Connection]] = {}

    async def deliver(
        self,
        hops: Sequence[Hop],
        transactions: Sequence[Transaction],
        via_mx: bool,
        allowed: Callable[[Transaction], bool | Awaitable[bool]] = lambda transaction: True,
        withheld: list[Transaction] | None = None,
        demand: TlsDemand | None = None,
        max_messages: int | None = None,
        outcomes: list[Outcome] | None = None,
        source: tuple[str, str] | None = None,
        site: str = "",
    ) -> list[Outcome]:
        """Deliver every transaction, reconnecting after a broken connection at most twice.

        `allowed` is asked (and awaited, if it waits) right before each transaction starts; one it
        refuses is not sent and goes to `withheld` (its hosting was blocked, or its site is slowed).
        With a `demand` (the domain's MTA-STS policy), each host must present a valid certificate
        for its name: in enforce mode a host that does not is skipped, in testing mode that is
        logged and the host used anyway. Outcomes are appended to `outcomes` as they come, so that
        `allowed` can see them. `source` is (address, EHLO name) of an outbound pool.

        With a `site`, the caller holds one of the site's connection slots for this call: a new
        connection first closes one parked at the site for another destination (that parked
        connection's slot may be the one the caller now holds), so the site never has more open
        connections than slots. See close_parked.
        """
        key = (tuple(hops), via_mx, demand, source)
        per_connection = min(max_messages or self._settings.messages_per_connection, self._settings.messages_per_connection)
        outcomes = [] if outcomes is None else outcomes
        pending = list(transactions)
        broken = 0
        while pending:
            started = time.time()
            connection = await self._reuse(key)
            if connection is None:
                if site:
                    await self.close_parked(site, 1)
                try:
                    client, server = await self._connect(hops, via_mx, demand, source)
                except _Unreachable as error:
                    outcomes.extend(_all(pending, error.code, str(error), "", started))
                    return outcomes
                connection = _Connection(client, server, site=site)
            try:
                while pending and connection.used < per_connection:
                    verdict = allowed(pending[0])
                    if inspect.isawaitable(verdict):
                        verdict = await verdict
                    if not verdict:
                        if withheld is not None:
                            withheld.append(pending[0])
                        pending.pop(0)
                        continue
                    outcomes.extend(await self._send(connection.client, connection.server, pending[0]))
                    pending.pop(0)
                    connection.used += 1
            except _ConnectionLost as lost:
                await _close(connection.client)
                outcomes.extend(lost.outcomes)
                pending.pop(0)
                broken += 1
                if broken > 2:
                    outcomes.extend(_all(pending, None, f"connection to {connection.server} lost: {lost}", connection.server, time.time()))
                    return outcomes
            except BaseException:
                await _close(connection.client)
                raise
            else:
                await self._park(key, connection, per_connection)
        return outcomes

    async def _reuse(self, key: tuple) -> _Connection | None:
        """An idle connection to the same destination, checked with RSET as Postfix does."""
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if time.monotonic() - connection.parked_at > self._settings.idle_seconds or not connection.client.is_connected:
                await _close(connection.client)
                continue
            try:
                await connection.client.rset(timeout=self._settings.connect_timeout)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                await _close(connection.client)
                continue
            return connection
        return None

    async def _park(self, key: tuple, connection: _Connection, per_connection: int) -> None:
        idle = self._idle.setdefault(key, [])
        if connection.used >= per_connection or len(idle) >= self._settings.max_idle:
            await _close(connection.client)
            return
        connection.parked_at = time.monotonic()
        idle.append(connection)

    async def close_parked(self, site: str, count: int) -> int:
        """Close up to `count` parked connections to `site`, the longest idle first: their slots go
        back (delivery.site_share keeps a slot while its connection may be parked). Returns how many."""
        if count <= 0:
            return 0
        parked = sorted(
            ((key, c) for key, idle in self._idle.items() for c in idle if c.site == site), key=lambda kc: kc[1].parked_at
        )
        closed = 0
        for key, connection in parked[:count]:
            idle = self._idle.get(key, [])
            if connection in idle:
                idle.remove(connection)
                if not idle:
                    self._idle.pop(key, None)
                await _close(connection.client)
                closed += 1
        return closed

    async def close_idle(self, older_than: float = 0.0) -> None:
        """Close parked connections idle for more than `older_than` seconds (all of them by default)."""
        now = time.monotonic()
        for key, idle in list(self._idle.items()):
            keep = [c for c in idle if now - c.parked_at < older_than]
            for connection in idle:
                if connection not in keep:
                    await _close(connection.client)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    async def _connect(
        self, hops: Sequence[Hop], via_mx: bool, demand: TlsDemand | None = None, source: tuple[str, str] | None = None
    ) -> tuple[aiosmtplib.SMTP, str]:
        last = _Unreachable("no server to connect to")
        for hop in hops:
            port = self._settings.mx_port if via_mx else hop.port
            for address in await self._addresses(hop, via_mx):
                label = f"{hop.host}[{address}]:{port}"
                if demand is not None:
                    try:
                        return await self._connect_verified(hop.host, address, port, label, source), label
                    except _Unreachable as error:
                        if demand.enforced or not error.tls:
                            last = _Unreachable(f"{demand.label()}: {error}" if error.tls else str(error), error.code)
                            continue
                        log.warning("%s: %s; delivering without a verified certificate", demand.label(), error)
                client = aiosmtplib.SMTP(
                    hostname=address,
                    port=port,
                    local_hostname=source[1] if source else self._settings.helo_name,
                    source_address=(source[0], 0) if source else None,
                    timeout=self._settings.command_timeout,
                    start_tls=None,
                    validate_certs=False,
                    tls_context=self._tls,
                )
                try:
                    # connect() reads the greeting, sends EHLO and upgrades with STARTTLS if offered.
                    await client.connect(timeout=self._settings.connect_timeout)
                except aiosmtplib.SMTPResponseException as error:
                    last = _Unreachable(f"{label} refused the session: {error.code} {error.message}", error.code)
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
                    last = _Unreachable(f"connect to {label} failed: {error or type(error).__name__}")
                else:
                    return client, label
                await _close(client)
        # A greeting refusal from the last server is not a verdict on the recipient: try later.
        raise _Unreachable(str(last), None if last.code is None or last.code >= 500 else last.code)

    async def _connect_verified(
        self, host: str, address: str, port: int, label: str, source: tuple[str, str] | None = None
    ) -> aiosmtplib.SMTP:
        """A session upgraded with STARTTLS whose certificate is valid for `host` (RFC 8461 §4.2)."""
        if self._verified_tls is None:
            self._verified_tls = verifying_context(None)
        client = aiosmtplib.SMTP(
            hostname=address, port=port, local_hostname=source[1] if source else self._settings.helo_name,
            source_address=(source[0], 0) if source else None, timeout=self._settings.command_timeout,
            start_tls=False, validate_certs=True, tls_context=self._verified_tls,
        )  # fmt: skip
        try:
            await client.connect(timeout=self._settings.connect_timeout)
            await client.ehlo()
        except aiosmtplib.SMTPResponseException as error:
            await _close(client)
            raise _Unreachable(f"{label} refused the session: {error.code} {error.message}", error.code) from None
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
            client.close()
            raise _Unreachable(f"connect to {label} failed: {error or type(error).__name__}") from None
        try:
            if not client.supports_extension("starttls"):
                raise _Unreachable(f"{label} does not offer STARTTLS", tls=True)
            await client.starttls(server_hostname=host, tls_context=self._verified_tls)
        except _Unreachable:
            await _close(client)
            raise
        except ssl.SSLCertVerificationError as error:
            client.close()
            raise _Unreachable(f"{label} has no valid certificate for {host}: {error.verify_message}", tls=True) from None
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
            client.close()
            raise _Unreachable(f"TLS with {label} failed: {error or type(error).__name__}", tls=True) from None
        return client

    async def _addresses(self, hop: Hop, via_mx: bool) -> list[str]:
        try:
            ipaddress.ip_address(hop.host)
            return [hop.host]
        except ValueError:
            pass
        if not via_mx:
            return [hop.host]  # a configured name: the system resolver decides
        found = await self._router.addresses(hop.host)
        return found

    async def _send(self, client: aiosmtplib.SMTP, server: str, transaction: Transaction) -> list[Outcome]:
        started = time.time()
        sendable, utf8, unsendable = _international(client, server, transaction)
        if not sendable:
            return _outcomes(unsendable, server, started)
        refused: list[tuple[DueRecipient, int | None, str]] = list(unsendable)
        accepted: list[DueRecipient] = []
        shape = for_smtputf8 if utf8 else for_ascii_server
        encoding = "utf-8" if utf8 else "ascii"
        options = ["SMTPUTF8", *(["BODY=8BITMIME"] if client.supports_extension("8bitmime") else [])] if utf8 else []
        try:
            try:
                await client.mail(shape(transaction.envelope_from), options=options, encoding=encoding)
            except aiosmtplib.SMTPSenderRefused as error:
                await _reset(client)
                return _outcomes(refused + [(r, error.code, error.message) for r in sendable], server, started)
            for recipient in sendable:
                try:
                    await client.rcpt(shape(recipient.address), encoding=encoding)
                except aiosmtplib.SMTPRecipientRefused as error:
                    refused.append((recipient, error.code, error.message))
                else:
                    accepted.append(recipient)
            if not accepted:
                await _reset(client)
                return _outcomes(refused, server, started)
            try:
                reply = await client.data(fold_long_lines(transaction.data), timeout=self._settings.data_timeout)
            except aiosmtplib.SMTPDataError as error:
                await _reset(client)
                return _outcomes(refused + [(r, error.code, error.message) for r in accepted], server, started)
        except aiosmtplib.SMTPResponseException as error:
            every = _outcomes(unsendable + [(r, error.code, error.message) for r in sendable], server, started)
            if error.code == 421:
                raise _ConnectionLost(str(error), every) from None
            await _reset(client)
            return every
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
            text = f"connection to {server} lost: {error or type(error).__name__}"
            lost = [(r, None, text) for r in transaction.recipients if r not in {x[0] for x in refused}]
            raise _ConnectionLost(text, _outcomes(refused + lost, server, started)) from None
        return _outcomes(refused + [(r, reply.code, reply.message) for r in accepted], server, started)


def _international(
    client: aiosmtplib.SMTP, server: str, transaction: Transaction
) -> tuple[list[DueRecipient], bool, list[tuple[DueRecipient, int | None, str]]]:
    """The recipients this server can take, whether the transaction uses SMTPUTF8, and the rest.

    A copy that needs SMTPUTF8 goes to a server that offers it, in an SMTPUTF8 transaction; to one
    that does not, it bounces with 5.6.7 (RFC 6531 §3.2) without a word to the server."""
    refused: list[tuple[DueRecipient, int | None, str]] = []
    headers_need_it = smtputf8.header_block_needs_it(transaction.data)
    offered = client.supports_extension("smtputf8")
    sendable: list[DueRecipient] = []
    utf8 = False
    for recipient in transaction.recipients:
        why = smtputf8.reason(transaction.envelope_from, recipient.address, headers_need_it)
        if why is None:
            sendable.append(recipient)
        elif offered:
            sendable.append(recipient)
            utf8 = True
        else:
            refused.append((recipient, smtputf8.REPLY_CODE, smtputf8.refusal(why, server)))
    return sendable, utf8, refused


class _ConnectionLost(Exception):
    def __init__(self, text: str, outcomes: list[Outcome]) -> None:
        super().__init__(text)
        self.outcomes = outcomes


def _outcomes(items: list[tuple[DueRecipient, int | None, str]], server: str, started: float) -> list[Outcome]:
    duration = time.time() - started
    return [Outcome(recipient, code, text, server, started, duration) for recipient, code, text in items]


def _all(transactions: Sequence[Transaction], code: int | None, text: str, server: str, started: float) -> list[Outcome]:
    return _outcomes([(r, code, text) for t in transactions for r in t.recipients], server, started)


async def _reset(client: aiosmtplib.SMTP) -> None:
    """End a failed transaction; if even RSET fails, the next transaction finds the connection closed."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
        client.close()


async def _close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await asyncio.wait_for(client.quit(), timeout=5)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            client.close()
