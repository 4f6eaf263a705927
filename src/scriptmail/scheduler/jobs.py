"""The scheduler part of a node: periodic jobs, each run by one node at a time where that matters.

- purges: any node takes a purging hosting's lease and runs it (scheduler.purge);
- the policy sweep: under the `policy` lease, every `control.policy_interval` seconds;
- held-mail expiry: every node may sweep, each batch only touches rows still held;
- pruning (old counters, the log beyond `control.log_days`, the API rate-limit rows of revoked
  tokens and of full buckets): under the `prune` lease, hourly;
- daily error reports: every minute, those due and not yet sent (exactly once by their key);
- webhooks: every node sends the due messages of the outbox, each under its own lease.
- DNS checks of sending domains' DKIM records: under the `domain-check` lease, every
  `domains.check_interval` seconds (a record that disappears makes its domain `failing`).
- notices to senders (DSN): every `control.notice_interval` seconds, from the events delivery wrote;
  each batch in one transaction, so no notice is lost or written twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from scriptmail.config import Settings
from scriptmail.domains import dns_check
from scriptmail.reports.schedule import days_due
from scriptmail.scheduler import daily_reports
from scriptmail.scheduler.policy_sweep import apply_detection, find_detections
from scriptmail.scheduler.purge import run_purge
from scriptmail.store import activity, idempotency, leases, queue, report_data, retention, sender_notices, suppressions, webhooks
from scriptmail.store.hosting_control import expire_held, purging_hostings
from scriptmail.store.rate_limits import live_tokens, prune_beside
from scriptmail.store.rate_limits import prune as prune_rate_rows
from scriptmail.store.writer import Writer
from scriptmail.webhooks.dispatcher import Dispatcher

log = logging.getLogger(__name__)

PURGE_POLL = 1.0  # how soon a purge started elsewhere (web, API, CLI) is picked up
ACTIVITY_DAYS = 8  # per-minute counters kept: the 7-day volume baseline and a day more
PRUNE_INTERVAL = 3600.0
REPORT_INTERVAL = 60.0  # reports go out within a minute of their hour


class Scheduler:
    def __init__(self, engine: Engine, writer: Writer, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._writer = writer
        self._settings = settings
        self._clock = clock
        self._owner = f"{settings.node}:scheduler"
        self._purges: dict[str, asyncio.Task] = {}
        self._stopping = threading.Event()
        self.webhooks = Dispatcher(writer, settings, clock) if settings.webhooks.enabled else None

    def loops(self) -> dict[str, Coroutine[Any, Any, None]]:
        """Each job repeated at its interval, by name (the gateway runs them as tasks)."""
        control = self._settings.control
        jobs: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            ("purges", PURGE_POLL, self.start_purges),
            ("policy sweep", control.policy_interval, self.sweep_policies),
            ("held-mail expiry", control.sweep_interval, self.expire_held_mail),
            ("pruning", PRUNE_INTERVAL, self.prune),
            ("daily reports", REPORT_INTERVAL, self.send_due_reports),
            ("domain checks", self._settings.domains.check_interval, self.check_domains),
            ("sender notices", control.notice_interval, self.write_notices),
        ]
        if self.webhooks is not None:
            jobs.append(("webhooks", self._settings.webhooks.poll_interval, self.webhooks.round))
        return {name: self._every(seconds, job, name) for name, seconds, job in jobs}

    def _run_sync(self, operation: Callable[[Connection], Any]) -> Any:
        """Run one write operation through the writer from a worker thread, and wait for it."""
        return self._writer.submit_nowait(operation).result()

    async def _every(self, seconds: float, job: Callable[[], Any], name: str) -> None:
        while True:
            try:
                await job()
            except Exception as error:  # noqa: BLE001 - the store may be away; the next round retries
                log.warning("%s failed: %s", name, error)
            await asyncio.sleep(seconds)

    async def start_purges(self) -> None:
        names = await asyncio.to_thread(self._read, purging_hostings)
        for name in names:
            if name not in self._purges:
                task = asyncio.create_task(
                    asyncio.to_thread(run_purge, self._run_sync, name, self._owner, self._clock, self._stopping.is_set)
                )
                self._purges[name] = task
                task.add_done_callback(lambda _, name=name: self._purges.pop(name, None))

    async def sweep_policies(self) -> list:
        """One round of the policy engine; returns the blocks it made."""
        now = self._clock()
        interval = self._settings.control.policy_interval
        if not await self._writer.submit(lambda c: leases.acquire(c, "policy", self._owner, 3 * interval, now)):
            return []
        detections = await asyncio.to_thread(find_detections, self._engine, self._settings, now)
        blocks = []
        for hosting_id, detection in detections:
            block = await self._writer.submit(
                lambda c, h=hosting_id, d=detection: apply_detection(c, self._settings, h, d, self._clock())
            )
            if block is not None:
                log.warning("%s: blocked automatically (%s): %s", block.hosting, block.state, block.reason)
                blocks.append(block)
        return blocks

    async def expire_held_mail(self) -> None:
        """Held mail is kept `control.hold_seconds` (72 h), then expires."""
        hold = self._settings.control.hold_seconds
        while True:
            now = self._clock()
            count = await self._writer.submit(lambda c, now=now: expire_held(c, now - hold, now))
            if count:
                log.info("%d held recipient(s) expired after %g h", count, hold / 3600)
            if count < 5000:
                break
        # Suppressed mail whose re-queue window has passed no longer needs its body; expired
        # suppression entries go.
        now = self._clock()
        await self._writer.submit(lambda c: (queue.free_suppressed_bodies(c, now), suppressions.prune(c, now)))

    async def write_notices(self) -> int:
        """Queue the notices to senders that delivery outcomes asked for; returns how many events."""
        settings = self._settings
        notice_settings = sender_notices.NoticeSettings(
            settings.hostname, settings.control.notify_from, settings.control.dsn_per_sender_hour, settings.delivery.lifetime,
            settings.domains,
        )
        handled = 0
        while True:
            count = await self._writer.submit(lambda c: sender_notices.write_pending(c, notice_settings, self._clock()))
            handled += count
            if count < sender_notices.BATCH:
                return handled

    async def prune(self) -> None:
        """Old per-minute counters, then the log beyond `control.log_days`, a batch per commit, then
        the Idempotency-Key answers older than a day."""
        now = self._clock()
        if not await self._writer.submit(lambda c: leases.acquire(c, "prune", self._owner, PRUNE_INTERVAL, now)):
            return
        before = activity.minute_of(now - ACTIVITY_DAYS * 86400)
        while await self._writer.submit(lambda c: activity.prune(c, before)):
            pass
        keep = self._settings.control.log_days * 86400
        pruned = 0
        while count := await self._writer.submit(lambda c: retention.prune_log(c, now - keep)):
            pruned += count
        while await self._writer.submit(lambda c: webhooks.prune(c, now - keep)):
            pass
        await self._writer.submit(lambda c: retention.prune_days(c, activity.day_of(now - keep)))
        await self._writer.submit(lambda c: sender_notices.prune(c, now - 86400))
        await self._writer.submit(lambda c: idempotency.prune(c, now))  # answers kept 24 h for retries
        await self.prune_rate_limits(now)
        if pruned:
            log.info("%d recipient(s) older than %d days removed from the log", pruned, self._settings.control.log_days)

    async def prune_rate_limits(self, now: float) -> int:
        """The API rate-limit rows of revoked tokens and of full buckets: in the store on PostgreSQL,
        in the file beside the database on SQLite (store.rate_limits); how many went."""
        if self._engine.dialect.name == "sqlite":
            live = await asyncio.to_thread(self._read, live_tokens)
            database = self._engine.url.database
            if not database or database == ":memory:":
                return 0
            return await asyncio.to_thread(prune_beside, database, now, live)
        return await self._writer.submit(lambda c: prune_rate_rows(c, now))

    async def send_due_reports(self) -> list[int]:
        """Queue every daily report that is due and not sent yet (by any node); their queue ids."""
        reports = self._settings.reports
        if not reports.enabled:
            return []
        now = self._clock()
        days = days_due(now, reports.hour, ZoneInfo(self._settings.timezone), reports.catch_up_days)
        pending = await asyncio.to_thread(self._read, lambda c: report_data.due(c, days))
        sent = []
        for hosting_id, day in pending:
            queue_id = await self._writer.submit(
                lambda c, h=hosting_id, d=day: daily_reports.send(c, self._settings, h, d, self._clock())
            )
            if queue_id is not None:
                log.info("daily report of hosting %d for %s queued as %d", hosting_id, day, queue_id)
                sent.append(queue_id)
        return sent

    async def check_domains(self) -> dict[str, str]:
        """Look up every sending domain's DKIM records once (one node at a time); their states."""
        now = self._clock()
        interval = self._settings.domains.check_interval
        if not await self._writer.submit(lambda c: leases.acquire(c, "domain-check", self._owner, interval, now)):
            return {}
        return await dns_check.check(self._engine, self._writer.submit, self._settings, now)

    def _read(self, query: Callable[[Connection], Any]) -> Any:
        with self._engine.connect() as connection:
            return query(connection)

    async def stop(self) -> None:
        """Let running purges finish their batch and hand back their leases: the next run resumes."""
        self._stopping.set()
        running = list(self._purges.values())
        if running:
            await asyncio.wait(running, timeout=30)
        if self.webhooks is not None:
            await self.webhooks.close()
