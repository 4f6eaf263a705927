"""This process's side of the site limits that every delivery process and node shares.

The shaper (shaping.shaper) decides for this process: pauses, slow-down levels, its own buckets.
The store (store.site_shares) counts for all of them: a connection slot per connection, held under
a lease this process renews; rate tokens reserved a few at a time and kept here for a moment, so a
busy site costs the store one short transaction per few recipients, not one per message.
A store that cannot be reached leaves the shaper's own limits in force: delivery goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from scriptmail.shaping import budget
from scriptmail.shaping.shaper import Shaper
from scriptmail.store import site_shares
from scriptmail.store.site_shares import SiteShares

log = logging.getLogger(__name__)

KEEP_TOKENS = 2.0  # reserved tokens not used within this many seconds are let go (never used)
KEEP_SLOT = 1.0  # a closed connection's slot is kept this long for the next connection to the site
FULL_FOR = 0.1  # a site the store found full is not asked again by this process for this long


class SharedSites:
    def __init__(
        self, shaper: Shaper, shares: SiteShares, holder: str, clock: Callable[[], float], lease: float = site_shares.LEASE
    ) -> None:
        self.lease = lease
        self.shaper = shaper
        self._shares = shares
        self._holder = holder
        self._clock = clock
        self._tokens: dict[str, tuple[int, float]] = {}  # site -> (tokens reserved here, when)
        self._open: dict[str, int] = {}  # site -> connections this process holds in the store
        # Slots of connections that closed, still held in the store: the next connection to the
        # site takes one without asking (a busy site costs no store call per connection).
        self._idle: dict[str, list[float]] = {}
        # Sites the store last found full, until when: the many connections waiting here for one
        # busy site ask the store once per FULL_FOR between them, not each on its own.
        self._full: dict[str, float] = {}
        self._asking: dict[str, asyncio.Lock] = {}  # held while this process asks the store about the site
        # Called with (site, n) before n kept slots go back: a connection parked idle holds its
        # slot, so it is closed first (the agent hands the SMTP client's close_parked here).
        self.before_release: Callable[[str, int], Awaitable[object]] | None = None
        self.store_calls = 0

    async def _call(self, work, *args):
        self.store_calls += 1
        return await asyncio.to_thread(self._shares.run, work, *args)

    async def start(self) -> None:
        """A previous run under this name may have died holding connections: they are not ours now."""
        await self._call(site_shares.forget, self._holder)

    async def renew_forever(self) -> None:
        """Keep this process's connection leases alive (a killed process's ones expire), and give
        back the slots kept idle for longer than KEEP_SLOT."""
        renewed = self._clock()
        while True:
            await asyncio.sleep(KEEP_SLOT / 2)
            await self.release_idle()
            if (self._open or self._idle) and self._clock() - renewed >= self.lease / 3:
                renewed = self._clock()
                try:
                    await self._call(site_shares.renew, self._holder, renewed, self.lease)
                except Exception as error:  # noqa: BLE001 - the next renewal tries again
                    log.warning("cannot renew the site connection leases: %s", error)

    async def release_idle(self, older_than: float = KEEP_SLOT) -> None:
        now = self._clock()
        for site in list(self._idle):
            kept = self._idle[site]
            stale = [at for at in kept if now - at >= older_than]
            if not stale:
                continue
            self._idle[site] = [at for at in kept if now - at < older_than]
            if not self._idle[site]:
                del self._idle[site]
            await self._let_go(site, len(stale))
            for _ in stale:
                try:
                    await self._call(site_shares.close_slot, site, self._holder)
                except Exception as error:  # noqa: BLE001 - the lease runs out by itself
                    log.warning("cannot free a connection to site %s in the store: %s", site, error)

    async def _let_go(self, site: str, count: int) -> None:
        if self.before_release is not None:
            try:
                await self.before_release(site, count)
            except Exception as error:  # noqa: BLE001 - the slot goes back all the same
                log.warning("cannot close the idle connections to site %s: %s", site, error)

    async def open(self, site: str, limit: int) -> bool:
        """A connection slot at the site among every process's; True when the store cannot answer."""
        if self._idle.get(site):
            self._idle[site].pop()
            if not self._idle[site]:
                del self._idle[site]
            self._open[site] = self._open.get(site, 0) + 1
            return True
        if self._clock() < self._full.get(site, 0.0):
            return False
        # One question about a site at a time from this process: the connections that want a slot
        # meanwhile learn from its answer that the site is full, instead of all queueing on the
        # site's row in the store (measured with 4 processes: 8 backends waiting on it at once).
        asking = self._asking.get(site) or self._asking.setdefault(site, asyncio.Lock())
        async with asking:
            if self._clock() < self._full.get(site, 0.0):
                return False
            try:
                ok = await self._call(site_shares.open_slot, site, self._holder, limit, self._clock(), self.lease)
            except Exception as error:  # noqa: BLE001 - shaping must not stop delivery
                log.warning("cannot count a connection to site %s in the store: %s", site, error)
                return True
        if ok:
            self._open[site] = self._open.get(site, 0) + 1
            self._full.pop(site, None)
        else:
            self._full[site] = self._clock() + FULL_FOR
        return ok

    async def close(self, site: str) -> None:
        left = self._open.get(site, 0) - 1
        if left < 0:
            return  # opened while the store could not answer
        if left:
            self._open[site] = left
        else:
            self._open.pop(site, None)
        self._idle.setdefault(site, []).append(self._clock())  # given back by release_idle()

    async def take(self, site: str, count: int) -> float:
        """Start a message of `count` recipients if the site may take it now (0), else the seconds to
        wait: the shaper's pause and buckets first, then the share of every process."""
        now = self._clock()
        wait = self.shaper.wait(site, now)
        if wait:
            return wait
        limits = self.shaper.state(site, now).limits
        if limits.per_minute or limits.per_hour:
            wait = await self._reserve(site, count, limits.per_minute, limits.per_hour)
            if wait:
                return wait
        self.shaper.take(site, self._clock(), count)
        return 0.0

    async def _reserve(self, site: str, count: int, per_minute: int, per_hour: int) -> float:
        have = self._fresh(site)
        if have >= count:
            self._tokens[site] = (have - count, self._tokens[site][1])
            return 0.0
        want = budget.batch_size(per_minute, per_hour, count - have)
        try:
            granted, wait = await self._call(site_shares.reserve, site, count - have, want, per_minute, per_hour, self._clock())
        except Exception as error:  # noqa: BLE001 - the shaper's own buckets still hold
            log.warning("cannot reserve rate for site %s in the store: %s", site, error)
            return 0.0
        if not granted:
            return wait
        have = self._fresh(site) + granted  # others here may have reserved meanwhile
        self._tokens[site] = (have - count, self._clock())
        return 0.0

    def _fresh(self, site: str) -> int:
        tokens, at = self._tokens.get(site, (0, 0.0))
        if tokens and self._clock() - at > KEEP_TOKENS:
            self._tokens.pop(site, None)
            return 0
        return tokens
