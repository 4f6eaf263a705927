"""This process's side of the slow-downs that every delivery process and node shares.

When a site tells this process to slow down, the complaint goes to the store (store.site_slowdowns)
and the store's answer is applied here; once a second the live slow-downs are read back, so a
process that was told nothing slows down (and recovers) with the one that was. No store call per
message or connection: only per complaint and per second. A store that cannot be reached leaves
each process with what it learnt itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from scriptmail.shaping.shaper import Shaper
from scriptmail.store import site_slowdowns
from scriptmail.store.site_shares import SiteShares

log = logging.getLogger(__name__)

FOLLOW_EVERY = 1.0  # seconds between reads of the shared slow-downs


class SharedSlowdowns:
    def __init__(
        self, shaper: Shaper, shares: SiteShares, clock: Callable[[], float], changed: Callable[[], None] = lambda: None
    ) -> None:
        self.shaper = shaper
        self._shares = shares
        self._clock = clock
        self._changed = changed  # a site's level changed here: show it soon
        self._ready = False
        self.store_calls = 0

    async def _call(self, work, *args):
        self.store_calls += 1
        if not self._ready:
            await asyncio.to_thread(site_slowdowns.ensure_beside, self._shares.engine)
            self._ready = True
        return await asyncio.to_thread(self._shares.run, work, *args)

    async def report(self, site: str) -> None:
        """The site asked this process to slow down (the shaper already applied it): tell the others."""
        now = self._clock()
        mine = self.shaper.slowdown_of(site, now)
        try:
            shared = await self._call(site_slowdowns.report, site, now, mine.reason, self.shaper.pause, self.shaper.slow_seconds)
        except Exception as error:  # noqa: BLE001 - this process keeps its own slow-down
            log.warning("cannot share the slow-down of site %s: %s", site, error)
            return
        self.shaper.adopt(site, shared, self._clock(), exactly=True)

    async def follow(self) -> None:
        """Apply the slow-downs other processes learnt."""
        now = self._clock()
        try:
            live = await self._call(site_slowdowns.live, now)
        except Exception as error:  # noqa: BLE001 - the next read tries again
            log.warning("cannot read the shared slow-downs: %s", error)
            return
        for site, shared in live.items():
            if self.shaper.adopt(site, shared, now):
                state = self.shaper.state(site, now)
                log.warning(
                    "site %s is slowed down by another process (%s); its limits are now %s",
                    site,
                    state.reason[:120],
                    state.limits,
                )
                self._changed()

    async def follow_forever(self, every: float = FOLLOW_EVERY) -> None:
        while True:
            await self.follow()
            await asyncio.sleep(every)
