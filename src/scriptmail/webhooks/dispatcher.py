"""Sending the outbox: claim due messages (a lease per message, SKIP LOCKED on PostgreSQL), send
them concurrently, record each outcome, and tell the owners of endpoints that got disabled."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection

from scriptmail.config import Settings
from scriptmail.store import webhooks as store
from scriptmail.store.hostings import get_hosting
from scriptmail.store.system_mail import queue_system_mail
from scriptmail.store.writer import Writer
from scriptmail.webhooks.addresses import parse_networks
from scriptmail.webhooks.notice import disabled_notice
from scriptmail.webhooks.resolve import Resolver
from scriptmail.webhooks.sender import Sender

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, writer: Writer, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        config = settings.webhooks
        self._writer = writer
        self._settings = settings
        self._clock = clock
        self._owner = f"{settings.node}:webhooks"
        resolver = Resolver(config.nameservers, config.dns_port, parse_networks(config.allow_networks))
        self.sender = Sender(resolver, config.timeout, clock)
        self._limit = asyncio.Semaphore(config.concurrency)
        self._released = False

    async def round(self) -> int:
        """Send what is due now, batch after batch; how many messages were tried."""
        config = self._settings.webhooks
        tried = 0
        if not self._released:  # what this node's previous run had leased is due again at once
            await self._writer.submit(lambda c: store.release_leases(c, self._owner, self._clock()))
            self._released = True
        while True:
            now = self._clock()
            due = await self._writer.submit(
                lambda c, now=now: store.claim_due(c, self._owner, config.batch_size, config.lease_seconds, now)
            )
            if not due:
                return tried
            outcomes = await asyncio.gather(*(self._attempt(message) for message in due))
            disabled = await self._writer.submit(lambda c, done=list(outcomes): self._record(c, done))
            for endpoint in disabled:
                log.warning("webhook endpoint %d (%s) disabled: %s", endpoint.endpoint_id, endpoint.url, endpoint.reason)
            tried += len(due)
            if len(due) < config.batch_size:
                return tried

    async def _attempt(self, message: store.DueMessage) -> store.Outcome:
        async with self._limit:
            started = self._clock()
            answer = await self.sender.send(f"msg_{message.id}", message.url, message.payload.encode(), message.secrets)
        return store.Outcome(message.id, message.endpoint_id, started, answer.status_code, answer.duration, answer.error, answer.excerpt)

    def _record(self, connection: Connection, outcomes: list[store.Outcome]) -> list[store.Disabled]:
        config = self._settings.webhooks
        now = self._clock()
        disabled = store.record_outcomes(
            connection, self._owner, outcomes, now, tuple(config.retry_delays), config.retry_window, config.disable_after
        )
        for endpoint in disabled:
            self._tell_owner(connection, endpoint, now)
        return disabled

    def _tell_owner(self, connection: Connection, endpoint: store.Disabled, now: float) -> None:
        """The hosting's owner for its endpoint, the platform's postmaster for a platform-wide one;
        queued in the same transaction as the disabling."""
        sender = self._settings.control.notify_from
        if endpoint.hosting_id is not None:
            hosting = get_hosting(connection, endpoint.hosting_id)
            owner, recipient, language = hosting.name, hosting.owner_email, hosting.language
        else:
            owner, recipient, language = self._settings.hostname, sender, "en"
        subject, data = disabled_notice(
            owner=owner, url=endpoint.url, reason=endpoint.reason, language=language, sender=sender,
            recipient=recipient, platform=self._settings.hostname, now=now,
        )  # fmt: skip
        queue_system_mail(connection, sender, recipient, data, subject, now, "webhook notice", domains=self._settings.domains)

    async def close(self) -> None:
        await self.sender.close()
