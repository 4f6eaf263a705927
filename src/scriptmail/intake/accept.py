"""Accepting a message: the one path shared by SMTP, the sendmail socket and maildrop pickup.

It finds the hosting, reads the header block once, adds what the standards ask for, and returns
only after the message and its recipients are committed: the caller may then say 250.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from scriptmail.control.content import HIGH_SCORE, score_message
from scriptmail.domains.names import from_domain
from scriptmail.intake.checks import Refused, check_address, check_size
from scriptmail.intake.headers import MAX_HOPS, HeaderBlock, addresses_in, complete, decoded, split_headers, trace
from scriptmail.intake.scanner import RspamdScanner
from scriptmail.intake.signer import Signer
from scriptmail.model import Hosting, Origin, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store.queue import insert_submissions
from scriptmail.store.writer import StoreUnavailable, Writer

log = logging.getLogger(__name__)

_CACHE_SECONDS = 5.0
_SCORE_INLINE = 256 * 1024  # larger messages are scored in a thread, off the event loop


def _ip_of(client: str) -> str:
    """The address part of an SMTP client's "[ip]:port" or "ip" description; "" for local callers."""
    text = client.strip()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    host = text.rpartition(":")[0] if text.count(":") == 1 else text
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return ""


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who handed us the message, as intake established it (never as the message claims)."""

    origin: Origin
    client: str
    cwd: str = ""
    command: str = ""
    protocol: str = "local"  # for our Received field: ESMTP[S][A] (RFC 3848) or local


class Acceptor:
    def __init__(
        self,
        engine: Engine,
        writer: Writer,
        hostname: str,
        max_size: int,
        max_recipients: int = 100,
        on_accepted: Callable[[], None] | None = None,
        scanner: RspamdScanner | None = None,
        signer: Signer | None = None,
    ) -> None:
        self._engine = engine
        self._writer = writer
        self._hostname = hostname
        self._max_size = max_size
        self._max_recipients = max_recipients
        self._on_accepted = on_accepted
        self._scanner = scanner
        self._signer = signer
        self._cache: dict[tuple[str, object], tuple[float, Hosting | None]] = {}
        self._in_progress = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def drain(self, timeout: float) -> None:
        """Wait (up to `timeout`) until no commit is pending, then a moment for the replies to go out."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        await asyncio.sleep(0.05)

    async def hosting_by_name(self, name: str) -> Hosting | None:
        return await self._lookup("name", name)

    async def hosting_by_uid(self, uid: int) -> Hosting | None:
        return await self._lookup("uid", uid)

    async def _lookup(self, key: str, value: object) -> Hosting | None:
        cached = self._cache.get((key, value))
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        try:
            hosting = await asyncio.to_thread(self._read_hosting, key, value)
        except Exception as error:  # noqa: BLE001 - any database failure is a temporary refusal
            raise StoreUnavailable(str(error).splitlines()[0]) from None
        self._cache[(key, value)] = (now + _CACHE_SECONDS, hosting)
        return hosting

    def _read_hosting(self, key: str, value: object) -> Hosting | None:
        with self._engine.connect() as connection:
            return hosting_store.find_hosting(connection, **{key: value})

    async def verify_password(self, name: str, password: str) -> Hosting | None:
        """argon2id is slow on purpose; it runs in a thread so the event loop keeps serving."""

        def check() -> bool:
            with self._engine.connect() as connection:
                found = hosting_store.smtp_password_hash(connection, name)
            return found is not None and hosting_store.password_matches(found[1], password)

        try:
            matches = await asyncio.to_thread(check)
        except Exception as error:  # noqa: BLE001
            raise StoreUnavailable(str(error).splitlines()[0]) from None
        return await self.hosting_by_name(name) if matches else None

    async def accept(
        self,
        hosting: Hosting,
        envelope_from: str,
        recipients: list[str],
        data: bytes,
        provenance: Provenance,
    ) -> int:
        """Commit the message; return its queue id. Raises Refused or StoreUnavailable."""
        return (await self.accept_submission(hosting, envelope_from, recipients, data, provenance))[0]

    async def accept_submission(
        self,
        hosting: Hosting,
        envelope_from: str,
        recipients: list[str],
        data: bytes,
        provenance: Provenance,
    ) -> tuple[int, Submission]:
        """Like `accept`, and also what was committed (signed or not): the test send shows it."""
        check_size(len(data), self._max_size)
        submission = await self._scored(self.prepare(hosting, envelope_from, recipients, data, provenance), hosting, provenance)
        if self._signer is not None:
            submission = await self._signer.signed(submission)
        now = time.time()
        self._in_progress += 1
        self._idle.clear()
        try:
            queue_id = await self._writer.submit_bulk(insert_submissions, (submission, now))
        finally:
            self._in_progress -= 1
            if not self._in_progress:
                self._idle.set()
        if self._on_accepted is not None:
            self._on_accepted()
        log.info(
            "%d: queued hosting=%s from=<%s> nrcpt=%d size=%d origin=%s client=%s",
            queue_id, hosting.name, envelope_from, len(submission.recipients), len(submission.data),
            provenance.origin.value, provenance.client,
        )  # fmt: skip
        return queue_id, submission

    async def _scored(self, submission: Submission, hosting: Hosting, provenance: Provenance) -> Submission:
        """Give the message its content score (built in, plus rspamd's verdict when configured).

        The score never refuses mail: it feeds the policy engine, which blocks the hosting when
        many of its messages score high. A scanner that is down is skipped.
        """
        data = submission.data
        if len(data) > _SCORE_INLINE:
            content = await asyncio.to_thread(score_message, data)
        else:
            content = score_message(data)
        points, reasons = content.points, list(content.reasons)
        if self._scanner is not None:
            result = await self._scanner.scan(
                data, sender=submission.envelope_from, recipients=submission.recipients, client_ip=_ip_of(provenance.client),
                user=hosting.name,
            )  # fmt: skip
            if result is not None and result.is_spam:
                points = max(points, HIGH_SCORE)
                reasons.append(f"rspamd {result.action} ({result.score:g}/{result.required_score:g}: {', '.join(result.symbols[:5])})")
        if not points and not reasons:
            return submission
        return replace(submission, score=points, score_reasons="; ".join(reasons))

    def prepare(
        self,
        hosting: Hosting,
        envelope_from: str,
        recipients: list[str],
        data: bytes,
        provenance: Provenance,
    ) -> Submission:
        # Every entry point checks as it reads; this is the last line for all of them.
        check_address(envelope_from, role="sender")
        unique = tuple(dict.fromkeys(check_address(address) for address in recipients))
        if not unique:
            raise Refused("554 5.5.1 no valid recipients")
        if len(unique) > self._max_recipients:
            raise Refused(f"552 5.5.3 too many recipients (at most {self._max_recipients} per message)")
        block = split_headers(data)
        if len(block.values("received")) >= MAX_HOPS:
            raise Refused(f"554 5.4.6 mail loop: {MAX_HOPS} or more Received fields")
        block = trace(complete(block, self._hostname), self._hostname, hosting.name, provenance.protocol)
        return Submission(
            hosting_id=hosting.id,
            envelope_from=envelope_from,
            recipients=unique,
            data=block.to_bytes(),
            origin=provenance.origin,
            client=provenance.client[:255],
            subject=decoded(block.first("subject"))[:998],
            message_id=block.first("message-id")[:998],
            script=block.first("x-php-originating-script")[:2000],
            cwd=provenance.cwd[:4096],
            command=provenance.command[:4096],
            from_domain=_from_domain(block),
        )


_PLAIN_FROM = re.compile(r'^(?:[^<>@,"()]*<)?[^<>@\s,"()]+@([^<>@\s,"()]+)>?$')


def _from_domain(block: HeaderBlock) -> str:
    """The RFC 5322 From domain (the first address's), as an A-label; "" when there is none.

    A plain `a@b` or `Name <a@b>` is read with a regular expression (5 µs); anything else (quoted
    names, comments, several addresses) by the email package (30 µs)."""
    plain = _PLAIN_FROM.match(block.first("from"))
    if plain:
        return from_domain(plain.group(1))
    found = addresses_in(block, "from")
    return from_domain(found[0].rpartition("@")[2]) if found and "@" in found[0] else ""
