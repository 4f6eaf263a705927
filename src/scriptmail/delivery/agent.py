"""The delivery agent: claim due recipients, send them grouped by destination, record outcomes.

Claims are leases in the store, so several agents (threads, processes, machines) can share one
PostgreSQL queue; a crashed agent's lease expires and its recipients are claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy import Engine

from scriptmail.config import DeliverySettings
from scriptmail.control.quota import QuotaGate
from scriptmail.delivery.pools import HostingFacts, Pool, matching_hostings, open_pools, pool_of
from scriptmail.delivery.retry import Schedule, status_for_reply
from scriptmail.delivery.routing import RouteError, Router
from scriptmail.delivery.site_share import SharedSites
from scriptmail.delivery.slowdown_share import SharedSlowdowns
from scriptmail.delivery.smtp_client import Outcome, SmtpClient, Transaction
from scriptmail.international.addresses import display as display_address
from scriptmail.model import AttemptResult, DueRecipient, RecipientStatus
from scriptmail.mta_sts import decision
from scriptmail.mta_sts.decision import TlsDemand
from scriptmail.mta_sts.source import PolicySource
from scriptmail.shaping.shaper import Shaper
from scriptmail.store import delivery_sites, queue, site_deferred
from scriptmail.store.hosting_control import STATE_REFRESH, held_hostings
from scriptmail.store.site_shares import SiteShares
from scriptmail.store.writer import Writer

log = logging.getLogger(__name__)

# A site that cannot take a message within this many seconds gets its recipients back in the
# queue, due when it can, rather than keeping them leased and a connection open meanwhile.
SHAPING_WAIT = 2.0
SHARED_SLOT_WAIT = 10.0  # at most this long for another process to free one of a site's connections
PUBLISH_EVERY = 5.0  # seconds between snapshots of the sites and pools in the store
BUSY_WITHIN = 600.0  # a site active this recently is shown as busy


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
        helo_name: str = "",
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
        self.shaper = Shaper(settings.site_table(), settings.slow_seconds, settings.throttle_pause)
        shares = SiteShares(engine)
        self.sites = SharedSites(self.shaper, shares, owner, clock, settings.site_lease)  # the limits all processes share
        self.sites.before_release = client.close_parked  # an idle connection holds its slot until it is closed
        self.slowdowns = SharedSlowdowns(self.shaper, shares, clock, changed=lambda: self._publish_now.set())
        self._site_freed: dict[str, asyncio.Event] = {}  # set when a connection to the site closes
        self.pools: dict[str, Pool] = open_pools(settings.pools, helo_name)
        self._pool_of: dict[int, str] = {}  # hosting id -> pool, for the hostings a rule names
        # Recipient domains whose site came from their MX hosts: written with the snapshot, so that
        # readers count a site's deferred mail without DNS (store.site_deferred).
        self._domain_sites: dict[str, tuple[str, float]] = {}
        self._unwritten_sites: dict[str, str] = {}
        self._publish_now = asyncio.Event()  # a site slowed down: show it without waiting for the period
        self._in_flight = 0
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: set[asyncio.Task] = set()
        self._held: set[int] = set()  # hostings whose mail is held (blocked, purging, spam, bounce)
        # Called when this agent stops claiming, full, while the queue may hold more due mail: the
        # app wakes the other processes' delivery (a process with room delivers its own mail alone).
        self.on_full: Callable[[], None] | None = None

    def wake(self) -> None:
        """New mail was committed: look for due recipients now rather than at the next poll."""
        self._wakeup.set()

    @property
    def has_room(self) -> bool:
        """Whether this agent takes more recipients now (else new mail waits for another process's)."""
        return self._room.is_set()

    async def run(self) -> None:
        self._held, self._pool_of = await asyncio.to_thread(self._read_states)
        watcher = asyncio.create_task(self._watch_states())
        self._tasks.add(watcher)
        publisher = asyncio.create_task(self._publish_sites())
        self._tasks.add(publisher)
        await self.sites.start()
        self._tasks.add(asyncio.create_task(self.sites.renew_forever()))
        self._tasks.add(asyncio.create_task(self.slowdowns.follow_forever()))
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
                if not self._room.is_set() and len(due) == limit and self.on_full is not None:
                    self.on_full()  # more may be due than this process takes now: the others may take it
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
            await self.sites.release_idle(older_than=0)  # the other processes may use them now

    def _spawn(self, work) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            await self._record([Outcome(r, error.code, str(error), "", started, 0.0) for t in transactions for r in t.recipients])
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
        site = self.shaper.table.site_of(domain, (hop.host for hop in hops) if via_mx else ())
        if via_mx:
            self._note_site(domain, site, started)
        state = self.shaper.state(site, started)
        count = sum(len(t.recipients) for t in transactions)
        state.in_flight += count
        try:
            wait = self.shaper.wait(site, started)
            if wait > SHAPING_WAIT:
                await self._postpone(site, transactions, started + wait)
                return
            by_pool: dict[str, list[Transaction]] = defaultdict(list)
            for transaction in transactions:
                by_pool[self._pool_of.get(transaction.recipients[0].hosting_id, self._settings.pool_for.default)].append(
                    transaction
                )
            connections = state.limits.connections
            chunks = [(pool, chunk) for pool, items in by_pool.items() for chunk in _chunks(items, min(connections, len(items)))]
            await asyncio.gather(*(self._one_connection(site, hops, via_mx, demand, pool, chunk) for pool, chunk in chunks))
        finally:
            state.in_flight -= count

    def _note_site(self, domain: str, site: str, now: float) -> None:
        """Remember a domain whose site its MX hosts told, to write it with the next snapshot."""
        if site == self.shaper.table.site_of(domain):
            return  # the name alone says it: readers need no row
        known = self._domain_sites.get(domain)
        if known is not None and known[0] == site and now - known[1] < site_deferred.REWRITE_AFTER:
            return
        if len(self._domain_sites) > 100_000:
            self._domain_sites.clear()
        self._domain_sites[domain] = (site, now)
        self._unwritten_sites[domain] = site

    async def _one_connection(
        self, site: str, hops: list, via_mx: bool, demand: TlsDemand | None, pool_name: str, chunk: list[Transaction]
    ) -> None:
        withheld: list[Transaction] = []
        kept_back: dict[int, float] = {}  # id(transaction) -> when the site can take it
        outcomes: list[Outcome] = []
        seen = 0

        def learn() -> None:
            nonlocal seen
            now = self._clock()
            for outcome in outcomes[seen:]:
                if self.shaper.observe(site, outcome.code, outcome.text, now):
                    self._publish_now.set()
                    self._spawn(self.slowdowns.report(site))
                    log.warning("site %s asks to slow down (%s %s); its limits are now %s", site, outcome.code, outcome.text[:120],
                                self.shaper.state(site, now).limits)  # fmt: skip
            seen = len(outcomes)

        async def allowed(transaction: Transaction) -> bool:
            learn()
            if not self._may_send(transaction):
                return False
            while True:
                wait = await self.sites.take(site, len(transaction.recipients))
                now = self._clock()
                if wait == 0.0:
                    return True
                if wait > SHAPING_WAIT:
                    kept_back[id(transaction)] = now + wait
                    return False
                await asyncio.sleep(wait)

        async with self._site_slot(site, chunk) as admitted:
            if not admitted:
                return
            pool = self.pools.get(pool_name)
            source = pool.next_source() if pool is not None else None
            limits = self.shaper.state(site, self._clock()).limits
            async with self._connections:
                await self._client.deliver(
                    hops, chunk, via_mx, allowed, withheld, demand,
                    max_messages=limits.messages_per_connection, outcomes=outcomes, source=source, site=site,
                )  # fmt: skip
            learn()
        if pool is not None:
            pool.sent += sum(1 for outcome in outcomes if outcome.code is not None and 200 <= outcome.code < 300)
        await self._record(outcomes)
        held = [t for t in withheld if id(t) not in kept_back]
        if held:
            await self._hold([r for t in held for r in t.recipients])
        if kept_back:
            back = [t for t in withheld if id(t) in kept_back]
            await self._postpone(site, back, max(kept_back.values()))

    @contextlib.asynccontextmanager
    async def _site_slot(self, site: str, chunk: list[Transaction]) -> AsyncIterator[bool]:
        """A connection slot at the site, within its current limit; False (the chunk went back to
        the queue) when the site will not take mail soon."""
        given_up = self._clock() + SHARED_SLOT_WAIT
        while True:
            now = self._clock()
            if self.shaper.may_connect(site, now):
                if await self.sites.open(site, self.shaper.state(site, now).limits.connections):
                    break
                wait = SHAPING_WAIT * 2 if now > given_up else 0.1  # other processes hold the site's connections
            else:
                wait = self.shaper.wait(site, now)
            if wait > SHAPING_WAIT:
                await self._postpone(site, chunk, now + wait)
                yield False
                return
            freed = self._site_freed.setdefault(site, asyncio.Event())
            freed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(freed.wait(), max(wait, 0.05))
        self.shaper.opened(site, now)
        try:
            yield True
        finally:
            self.shaper.closed(site)
            await self.sites.close(site)
            freed = self._site_freed.pop(site, None)
            if freed is not None:
                freed.set()

    async def _postpone(self, site: str, transactions: list[Transaction], until: float) -> None:
        """Back to the queue, due when the site can take them; not an attempt."""
        ids = [r.id for t in transactions for r in t.recipients]
        now = self._clock()
        self.shaper.state(site, now).postponed += len(ids)
        await self._writer.submit(lambda c: queue.postpone(c, self._owner, ids, until, now))
        log.info("%d recipient(s) for site %s wait %.0f s: %s", len(ids), site, until - now,
                 self.shaper.state(site, now).reason or "at the site's limit")  # fmt: skip

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
            self._held, self._pool_of = await asyncio.to_thread(self._read_states)
            self.wake()

    async def reread_states(self, *_: str) -> None:
        """A hosting's state changed (a notice on the bus): reread now, not at the next period."""
        self._held, self._pool_of = await asyncio.to_thread(self._read_states)

    async def _watch_states(self) -> None:
        """Keep the set of hostings that do not send fresh; BLOCK waits one period before returning."""
        while True:
            try:
                self._held, self._pool_of = await asyncio.to_thread(self._read_states)
            except Exception as error:  # noqa: BLE001 - keep the last known set; try again
                log.warning("cannot read hosting states: %s", error)
            await asyncio.sleep(STATE_REFRESH)

    def snapshot(self, now: float) -> list[tuple[str, str, dict]]:
        """The busy or slowed sites and the pools, as the store keeps them (see store.delivery_sites)."""
        rows: list[tuple[str, str, dict]] = []
        for view in self.shaper.views(now, active_within=BUSY_WITHIN)[:500]:
            data = dataclasses.asdict(view)
            data.pop("name")
            rows.append(("site", view.name, data))
        for pool in self.pools.values():
            rows.append(
                (
                    "pool",
                    pool.name,
                    {"addresses": pool.addresses, "unusable": pool.unusable, "helo_name": pool.helo_name, "sent": pool.sent},
                )
            )
        return rows

    async def _publish_sites(self) -> None:
        while True:
            mapped: dict[str, str] = {}
            try:
                now = self._clock()
                rows = self.snapshot(now)
                mapped, self._unwritten_sites = self._unwritten_sites, {}
                await self._writer.submit(lambda c, rows=rows, now=now, mapped=mapped: self._publish(c, rows, mapped, now))
            except Exception as error:  # noqa: BLE001 - a snapshot is informative; delivery goes on
                self._unwritten_sites = {**mapped, **self._unwritten_sites}
                log.warning("cannot publish the delivery sites: %s", error)
            await asyncio.sleep(0.5)
            self._publish_now.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._publish_now.wait(), PUBLISH_EVERY)

    def _publish(self, connection, rows: list[tuple[str, str, dict]], mapped: dict[str, str], now: float) -> None:
        delivery_sites.publish(connection, self._owner, rows, now)
        site_deferred.record(connection, mapped.items(), now, keep=self._settings.lifetime + 86400)

    def _read_states(self) -> tuple[set[int], dict[int, str]]:
        """The held hostings and, with pools, the pool of each hosting a rule names (one read per period)."""
        with self._engine.connect() as connection:
            held = held_hostings(connection)
            if not self.pools:
                return held, {}
            rules, now = self._settings.pool_for, self._clock()
            named = {h.id: pool_of(rules, h, now) for h in matching_hostings(connection, rules, now)}
            return held, {hosting_id: pool for hosting_id, pool in named.items() if pool}

    def pool_for(self, hosting: HostingFacts) -> str:
        """The pool a hosting's mail should leave through by the rules ('' for none)."""
        return pool_of(self._settings.pool_for, hosting, self._clock()) if self.pools else ""

    def current_pool(self, hosting_id: int) -> str:
        """The pool this agent sends the hosting's mail through, as of its last read of the states."""
        return self._pool_of.get(hosting_id, self._settings.pool_for.default)

    async def _give_up(self, due: list[DueRecipient], reason: str) -> None:
        """No later attempt could succeed: the recipient expires at once, with the reason."""
        now = self._clock()
        results = [AttemptResult(r.id, RecipientStatus.EXPIRED, None, reason, "", now, 0.0, hosting_id=r.hosting_id) for r in due]
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
                await self._writer.submit_bulk(
                    queue.record_results_bulk, (self._owner, results, now, self._settings.suppression_days)
                )
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
