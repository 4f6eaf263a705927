"""The inbound listener on the bounce domain: reports for our VERP addresses, and nothing else.

Anyone may connect (bounces come from every mail server on the internet), but a recipient is
accepted only if it is a valid token of ours (forged or stale addresses get 550 at RCPT), and the
only thing done with the data is to parse it and attach it to the recipient it names. It never
relays and never crashes on a report: what cannot be parsed is kept as unparsed.

It offers SMTPUTF8 (RFC 6531): a report about mail that needed it is itself such mail (a global
DSN, RFC 6533), and auto-replies come from UTF-8 senders too. As on intake, a non-ASCII address
needs the SMTPUTF8 parameter, and must be valid UTF-8 and IDNA.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from scriptmail.bounces.verp import decode
from scriptmail.international.addresses import AddressError, check_local_text, needs_idna, to_a_label

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 50  # a report names one of our addresses; a few more for forwarded copies


def sender_refusal(address: str, smtputf8: bool) -> str | None:
    """The reply refusing a report's MAIL FROM, or None: any sender (the null one above all), but a
    non-ASCII one only in an SMTPUTF8 transaction, and only a real address."""
    if address in ("", "<>") or address.isascii():
        return None
    if not smtputf8:
        return "553 5.6.7 a non-ASCII address needs the SMTPUTF8 parameter on MAIL FROM"
    local, at, domain = address.rpartition("@")
    try:
        if not at or not local or not domain:
            raise AddressError("an address is local-part@domain")
        check_local_text(local)
        if needs_idna(domain):
            to_a_label(domain)
    except AddressError as error:
        return f"553 5.1.7 {str(error)[:200]}"
    return None


class BounceHandler:
    def __init__(self, domain: str, secret: bytes, record: Callable[[int, bytes, str], Awaitable[str]]) -> None:
        self._domain = domain
        self._secret = secret
        self._record = record  # (recipient id, data, client) -> what happened, for the log

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        refusal = sender_refusal(address, bool(envelope.smtp_utf8))
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        if not address.isascii() and not envelope.smtp_utf8:
            return "553 5.6.7 a non-ASCII address needs the SMTPUTF8 parameter on MAIL FROM"
        recipient_id = decode(address, self._secret, self._domain)
        if recipient_id is None:
            return "550 5.1.1 no such address here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(options)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        client = str(session.peer[0]) if isinstance(session.peer, tuple) and session.peer else "unknown"
        try:
            for address in envelope.rcpt_tos:
                recipient_id = decode(address, self._secret, self._domain)
                if recipient_id is not None:
                    outcome = await self._record(recipient_id, data, client)
                    log.info("report for recipient %d from %s: %s", recipient_id, client, outcome)
        except Exception as error:  # noqa: BLE001 - the store is away: the sender will try again
            log.warning("cannot record a report from %s: %s", client, error)
            return "451 4.3.0 temporarily unable to accept reports"
        return "250 2.0.0 report received"


def make_bounce_factory(
    handler: BounceHandler, hostname: str, max_size: int, tls_context: Callable[[], ssl.SSLContext] | None = None
) -> Callable[[], SMTP]:
    """One aiosmtpd protocol per connection, offering STARTTLS with intake's certificate when given."""

    def factory() -> SMTP:
        return SMTP(
            handler,
            tls_context=tls_context() if tls_context is not None else None,
            require_starttls=False,
            hostname=hostname,
            ident="scriptmail bounces",
            data_size_limit=max_size,
            enable_SMTPUTF8=True,  # global DSNs and UTF-8 senders (RFC 6531, RFC 6533)
            decode_data=False,
            auth_required=False,
            auth_require_tls=False,
            timeout=120,
            loop=asyncio.get_running_loop(),
        )

    return factory
