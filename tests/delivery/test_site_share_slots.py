"""A process keeps the slot of a connection that closed for a moment, so that a busy site costs
no store call per connection; slots kept idle go back to the store, and at once on stop."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from scriptmail.delivery.site_share import FULL_FOR, KEEP_SLOT, SharedSites
from scriptmail.shaping.shaper import Shaper
from scriptmail.shaping.sites import Limits, build_table
from scriptmail.store import site_shares
from scriptmail.store.site_shares import SiteShares

DEFAULT = Limits(connections=4, messages_per_connection=50)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_closed_connections_slot_serves_the_next_one_then_goes_back(engine: Engine) -> None:
    clock = Clock()
    shares = SiteShares(engine)
    here = SharedSites(Shaper(build_table(DEFAULT, {}, shipped={})), shares, "node-a", clock)
    other = SharedSites(Shaper(build_table(DEFAULT, {}, shipped={})), shares, "node-b", clock)
    assert await here.open("google", 1)
    await here.close("google")
    calls = here.store_calls
    for _ in range(50):  # fifty connections one after the other: no store call
        assert await here.open("google", 1)
        await here.close("google")
    assert here.store_calls == calls
    # The kept slot still counts for every process: node-b cannot open the site's only connection.
    assert not await other.open("google", 1)
    clock.now += KEEP_SLOT
    await here.release_idle()
    assert shares.run(site_shares.open_connections, clock.now) == {}
    assert await other.open("google", 1)


async def test_stopping_gives_back_every_kept_slot(engine: Engine) -> None:
    clock = Clock()
    shares = SiteShares(engine)
    here = SharedSites(Shaper(build_table(DEFAULT, {}, shipped={})), shares, "node-a", clock)
    for site in ("google", "yahoo"):
        assert await here.open(site, 2)
        await here.close(site)
    assert shares.run(site_shares.open_connections, clock.now) == {"google": 1, "yahoo": 1}
    await here.release_idle(older_than=0)
    assert shares.run(site_shares.open_connections, clock.now) == {}


async def _one_holds_google(engine: Engine, clock: Clock) -> tuple[SharedSites, SharedSites]:
    """Two processes on one store; the first holds the only connection to "google"."""
    shares = SiteShares(engine)
    holder = SharedSites(Shaper(build_table(DEFAULT, {}, shipped={})), shares, "node-a", clock)
    waiting = SharedSites(Shaper(build_table(DEFAULT, {}, shipped={})), shares, "node-b", clock)
    assert await holder.open("google", 1)
    return holder, waiting


async def test_a_full_site_is_asked_once_for_all_the_connections_waiting_here(engine: Engine) -> None:
    """Another process holds the site's only connection: the twenty connections waiting here cost
    the store one call between them, and the site is asked again once FULL_FOR has passed."""
    clock = Clock()
    holder, waiting = await _one_holds_google(engine, clock)
    calls = waiting.store_calls
    for _ in range(20):
        assert not await waiting.open("google", 1)
    assert waiting.store_calls == calls + 1
    assert await waiting.open("yahoo", 1)  # other sites are asked as usual
    await holder.close("google")
    await holder.release_idle(older_than=0)
    clock.now += FULL_FOR
    assert await waiting.open("google", 1)


async def test_connections_asking_at_the_same_moment_share_one_question(engine: Engine) -> None:
    """Twenty connections want a slot of a full site at once: before one answer came back each had
    asked, and with four processes they queued on the site's row in the store."""
    clock = Clock()
    holder, waiting = await _one_holds_google(engine, clock)
    calls = waiting.store_calls
    assert await asyncio.gather(*(waiting.open("google", 1) for _ in range(20))) == [False] * 20
    assert waiting.store_calls == calls + 1
