"""The delivery agent: claim due recipients, send them grouped by destination, record outcomes.

Claims are leases in the store, so several agents (threads, processes, machines) can share one
PostgreSQL queue; a crashed agent's lease expires and its recipients are claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy import Engine

from scriptmail.config import DeliverySettings
from scriptmail.control.quota import QuotaGate
from scriptmail.delivery.retry import Schedule, status_for_reply
from scriptmail.delivery.routing import RouteError, Router
from scriptmail.delivery.smtp_client import Outcome, SmtpClient, Transaction
from scriptmail.international.addresses import display as display_address
from scriptmail.model import AttemptResult, DueRecipient, RecipientStatus
from scriptmail.mta_sts import decision
from scriptmail.mta_sts.source import PolicySource
from scriptmail.store import queue
from scriptmail.store.hosting_control import STATE_REFRESH, held_hostings
from scriptmail.store.writer import Writer

log = logging.getLogger(__name__)


def result_for(outcome: Outcome, schedule: Schedule, now: float, delay_warning: float = 0) -> AttemptResult:
    """Turn what the server said into the recipient's next status (pure). With `delay_warning`,
    a recipient still deferred that long after it was queued is marked for a delay notice."""
    status = status_for_reply(outcome.code)
    next_at = None
    text = outcome.text
    if status is RecipientStatus.DEFERRED:
        attempts = outcome.recipient.attempts + 1
        status, next_at = schedule.after_failure(attempts, outcome.recipient.first_queued_at, now)
        if status is RecipientStatus.EXPIRED:
            text = f"gave up: still undeliverable after {schedule.lifetime / 3600:g} h; last error: {text}"
    return AttemptResult(
        recipient_id=outcome.recipient.id,
        status=status,
        code=outcome.code,
        text=text,
        mx_host=outcome.server,
        started_at=outcome.started_at,
        duration=outcome.duration,
        next_attempt_at=next_at,
        hosting_id=outcome.recipient.hosting_id,
        warn_delay=bool(delay_warning)
        and status is RecipientStatus.DEFERRED
        and now - outcome.recipient.first_queued_at >= delay_warning,
    )


SenderFor = Callable[[DueRecipient], str | None]


def transactions_of(
    due: Sequence[DueRecipient], bodies: dict[int, bytes], sender_for: SenderFor | None = None
) -> tuple[list[Transaction], list[DueRecipient]]:
    """One transaction per message and destination domain; recipients whose body is gone are
    returned apart. With VERP (`sender_for`), each recipient has its own envelope sender, so its
    own transaction."""
    grouped: dict[tuple[int, str], list[DueRecipient]] = defaultdict(list)
    orphans = []
    for recipient in due:
        if recipient.message_id not in bodies:
            orphans.append(recipient)
            continue
        sender = sender_for(recipient) if sender_for is not None else None
        grouped[(recipient.message_id, recipient.envelope_from if sender is None else sender)].append(recipient)
    transactions = [
        Transaction(message_id, sender, tuple(members), bodies[message_id]) for (message_id, sender), members in grouped.items()
    ]
    return transactions, orphans


class DeliveryAgent:
    def __init__(
        self,
        engine: Engine,
        writer: Writer,
        settings: DeliverySettings,
        client: SmtpClient,
        router: Router,
        owner: str,
        gate: QuotaGate | None = None,
        clock: Callable[[], float] = time.time,
        sender_for: SenderFor | None = None,
        sts: PolicySource | None = None,
    ) -> None:
        self._engine = engine
        self._writer = writer
        self._settings = settings
        self._client = client
        self._router = router
        self._owner = owner
        self._gate = gate
        self._sender_for = sender_for  # VERP: the envelope sender of each recipient
        self._sts = sts  # recipient domains' MTA-STS policies; None: off
        self._clock = clock
        self._schedule = Schedule(settings.backoff_min, settings.backoff_max, settings.lifetime)
        self._wakeup = asyncio.Event()
        self._connections = asyncio.Semaphore(settings.concurrency)
        self._per_destination: dict[str, list] = {}  # domain -> [semaphore, users]
        self._in_flight = 0
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: set[asyncio.Task] = set()
        self._held: set[int] = set()  # hostings whose mail is held (blocked, purging, spam, bounce)

    def wake(self) -> None:
        """New mail was committed: look for due recipients now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        self._held = await asyncio.to_thread(self._read_held)
        watcher = asyncio.create_task(self._watch_states())
        self._tasks.add(watcher)
        released = await self._writer.submit(lambda c: queue.release_leases(c, self._owner, self._clock()))
        if released:
            log.info("re-queued %d recipients left in delivery by the previous run", released)
        try:
            while True:
                await self._room.wait()
                limit = min(self._settings.batch_size, self._max_in_flight - self._in_flight)
                try:
                    due = await self._writer.submit(
                        lambda c, limit=limit: queue.claim_due(
                            c, self._owner, limit, self._settings.lease_seconds, self._clock(), self._gate
                        )
                    )
                except Exception as error:  # noqa: BLE001 - a store outage pauses delivery, never ends it
                    log.warning("cannot claim recipients (%s); trying again in %g s", error, self._settings.poll_interval)
                    await asyncio.sleep(self._settings.poll_interval)
                    continue
                self._log_waits()
                if not due:
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), self._settings.poll_interval)
                    except asyncio.TimeoutError:
                        await self._client.close_idle(older_than=self._settings.idle_seconds)
                    continue
                self._track(len(due))
                task = asyncio.create_task(self._dispatch(due))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if len(due) < limit:
                    # The queue is drained: let new mail gather for a moment, so that the next
                    # claim, its connections and its results each serve many messages at once.
                    await asyncio.sleep(self._settings.claim_delay)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._client.close_idle()

    def _log_waits(self) -> None:
        if self._gate is None or not self._gate.waits:
            return
        for hosting_id, count, until, reason in self._gate.waits:
            log.info(
                "hosting %d: %s; %s recipient(s) wait until %s", hosting_id, reason,
                count if count else "further", time.strftime("%H:%M:%S UTC", time.gmtime(until)),
            )  # fmt: skip
        self._gate.waits.clear()

    @property
    def _max_in_flight(self) -> int:
        return self._settings.batch_size * 4

    def _track(self, count: int) -> None:
        self._in_flight += count
        if self._in_flight >= self._max_in_flight:
            self._room.clear()
        else:
            self._room.set()

    async def _dispatch(self, due: list[DueRecipient]) -> None:
        try:
            bodies = await asyncio.to_thread(self._load_bodies, {r.message_id for r in due})
            transactions, orphans = transactions_of(due, bodies, self._sender_for)
            if orphans:
                await self._give_up(orphans, "message body missing from the store")
            by_domain: dict[str, list[Transaction]] = defaultdict(list)
            for transaction in transactions:
                for domain, members in _split_by_domain(transaction).items():
                    by_domain[domain].append(members)
            await asyncio.gather(*(self._deliver_domain(domain, items) for domain, items in by_domain.items()))
        except Exception:  # noqa: BLE001 - an agent bug must not stop delivery; the leases will expire
            log.exception("delivery of a batch of %d recipients failed", len(due))
        finally:
            self._track(-len(due))

    def _load_bodies(self, message_ids: set[int]) -> dict[int, bytes]:
        with self._engine.connect() as connection:
            return queue.load_bodies(connection, message_ids)

    async def _deliver_domain(self, domain: str, transactions: list[Transaction]) -> None:
        started = self._clock()
        try:
            hops = await self._router.hops(domain)
        except RouteError as error:
            await self._record(
                [Outcome(r, error.code, str(error), "", started, 0.0) for t in transactions for r in t.recipients]
            )
            return
        via_mx = self._router.static_hop(domain) is None
        demand = None
        if via_mx and self._sts is not None:
            # RFC 8461 covers MX delivery only: a configured route or relay host is the operator's.
            plan = decision.plan(domain, await self._sts.policy(domain), [hop.host for hop in hops])
            if plan.unlisted:
                log.warning("%s does not list MX host(s) %s", plan.demand.label() if plan.demand else domain, ", ".join(plan.unlisted))
            if plan.refusal:
                await self._record([Outcome(r, None, plan.refusal, "", started, 0.0) for t in transactions for r in t.recipients])
                return
            hops = [hop for hop in hops if hop.host in plan.hosts]
            demand = plan.demand
        chunks = _chunks(transactions, min(self._settings.per_destination, len(transactions)))

        async def one_connection(chunk: list[Transaction]) -> None:
            withheld: list[Transaction] = []
            async with self._destination(domain), self._connections:
                outcomes = await self._client.deliver(hops, chunk, via_mx, self._may_send, withheld, demand)
            await self._record(outcomes)
            if withheld:
                await self._hold([r for t in withheld for r in t.recipients])

        await asyncio.gather(*(one_connection(chunk) for chunk in chunks))

    @contextlib.asynccontextmanager
    async def _destination(self, domain: str) -> AsyncIterator[None]:
        """At most `per_destination` connections to one domain; the limiter lives while in use."""
        entry = self._per_destination.get(domain)
        if entry is None:
            entry = self._per_destination[domain] = [asyncio.Semaphore(self._settings.per_destination), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._per_destination[domain]

    def _may_send(self, transaction: Transaction) -> bool:
        # A message its owner released one by one goes out while the rest of the hosting stays held.
        return transaction.recipients[0].hosting_id not in self._held or all(r.released for r in transaction.recipients)

    async def _hold(self, due: list[DueRecipient]) -> None:
        """Claimed before their hosting stopped sending, not yet sent: held like the rest."""
        ids = [r.id for r in due]
        held = await self._writer.submit(lambda c: queue.withhold(c, self._owner, ids, self._clock()))
        log.info("%d recipient(s) held before sending: their hosting stopped sending", held)
        if held < len(ids):
            # Unblocked meanwhile: reread the states now rather than re-claim with a stale set.
            self._held = await asyncio.to_thread(self._read_held)
            self.wake()

    async def reread_states(self, *_: str) -> None:
        """A hosting's state changed (a notice on the bus): reread now, not at the next period."""
        self._held = await asyncio.to_thread(self._read_held)

    async def _watch_states(self) -> None:
        """Keep the set of hostings that do not send fresh; BLOCK waits one period before returning."""
        while True:
            try:
                self._held = await asyncio.to_thread(self._read_held)
            except Exception as error:  # noqa: BLE001 - keep the last known set; try again
                log.warning("cannot read hosting states: %s", error)
            await asyncio.sleep(STATE_REFRESH)

    def _read_held(self) -> set[int]:
        with self._engine.connect() as connection:
            return held_hostings(connection)

    async def _give_up(self, due: list[DueRecipient], reason: str) -> None:
        """No later attempt could succeed: the recipient expires at once, with the reason."""
        now = self._clock()
        results = [
            AttemptResult(r.id, RecipientStatus.EXPIRED, None, reason, "", now, 0.0, hosting_id=r.hosting_id) for r in due
        ]
        log.error("%d recipient(s) given up: %s", len(due), reason)
        await self._writer.submit_bulk(queue.record_results_bulk, (self._owner, results, now, self._settings.suppression_days))

    async def _record(self, outcomes: list[Outcome]) -> None:
        now = self._clock()
        results = [result_for(outcome, self._schedule, now, self._settings.delay_warning) for outcome in outcomes]
        if log.isEnabledFor(logging.INFO):
            for outcome, result in zip(outcomes, results):
                # One line per attempt, like an MTA's mail log: what an operator greps first.
                log.info(
                    "%d: to=<%s> relay=%s delay=%.2f status=%s (%s%s)",
                    outcome.recipient.message_id, display_address(outcome.recipient.address), outcome.server or "none",
                    now - outcome.recipient.first_queued_at, result.status.value,
                    f"{outcome.code} " if outcome.code else "", result.text[:200],
                )  # fmt: skip
        for attempt in range(1, 4):
            try:
                await self._writer.submit_bulk(queue.record_results_bulk, (self._owner, results, now, self._settings.suppression_days))
                break
            except Exception as error:  # noqa: BLE001
                # Unrecorded results leave the recipients leased: they would be sent again once the
                # lease runs out. Worth a few tries before giving in to that.
                log.warning("cannot record %d delivery results (try %d): %s", len(results), attempt, error)
                await asyncio.sleep(attempt)


def _split_by_domain(transaction: Transaction) -> dict[str, Transaction]:
    domains: dict[str, list[DueRecipient]] = defaultdict(list)
    for recipient in transaction.recipients:
        domains[recipient.domain].append(recipient)
    if len(domains) == 1:
        return {next(iter(domains)): transaction}
    return {
        domain: Transaction(transaction.message_id, transaction.envelope_from, tuple(members), transaction.data)
        for domain, members in domains.items()
    }


def _chunks(items: list[Transaction], count: int) -> list[list[Transaction]]:
    size = max(1, math.ceil(len(items) / max(count, 1)))
    return [items[i : i + size] for i in range(0, len(items), size)]
