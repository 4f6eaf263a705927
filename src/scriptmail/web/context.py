"""What every web request handler needs: the store, its writer, the settings, the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine

from scriptmail.config import Settings
from scriptmail.store import accounts, nodes
from scriptmail.store.bus import Bus
from scriptmail.store.hosting_control import Change
from scriptmail.store.writer import Writer
from scriptmail.web.access_cache import AccessCache
from scriptmail.web.mail_first import MailActivity
from scriptmail.web.rate_budget import RateBudget

if TYPE_CHECKING:
    from scriptmail.intake.accept import Acceptor

T = TypeVar("T")


@dataclass
class WebContext:
    engine: Engine
    writer: Writer
    settings: Settings
    clock: Callable[[], float] = field(default=time.time)
    bus: Bus | None = None  # started by the gateway; None: wait the longest settle time instead
    acceptor: Acceptor | None = None  # intake's acceptance, for the test send; None: no test sends here
    access: AccessCache = field(default_factory=AccessCache)  # tokens and grants, forgotten on bus.ACCESS
    rate_budget: RateBudget = field(default_factory=RateBudget)
    mail: MailActivity | None = None  # the intake of this same process, if it runs one (web.mail_first)

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run a read-only query in a worker thread: the event loop keeps serving."""

        def run() -> T:
            with self.engine.connect() as connection:
                return query(connection)

        return await asyncio.to_thread(run)

    async def read_small(self, query: Callable[[Connection], T]) -> T:
        """A read of a few rows by key. On SQLite it runs right here: in WAL mode a reader never
        waits for the writer, and the query takes less time than handing it to a thread. But not
        while this process's intake is taking mail: under its commits an inline read held up the
        SMTP sessions sharing the loop (0.77x against 0.86x of the mail's rate, measured). A
        PostgreSQL query is a network round trip, so it goes to a thread like any other."""
        if self.engine.dialect.name != "sqlite" or (self.mail is not None and self.mail.busy()):
            return await self.read(query)
        with self.engine.connect() as connection:
            return query(connection)

    async def visible_hosting(self, user: accounts.User, name: str) -> int | None:
        """The id of hosting `name` if `user` may see it (remembered like the token: see access)."""
        if len(name) > 253 or not name.isprintable():
            return None  # no hosting is named so; PostgreSQL refuses a NUL in a query outright
        key = ("hosting", user.id, user.operator, name)
        found = self.access.get(key)
        if found is None:
            found = await self.read_small(lambda c: accounts.may_see(c, user, name))
            self.access.put(key, found)
        return found

    async def write(self, operation: Callable[[Connection], Any]) -> Any:
        """Commit `operation`. What this process remembers of tokens and grants is forgotten at
        once, so a revocation made here holds for its very next request."""
        try:
            return await self.writer.submit(operation)
        finally:
            self.access.clear()

    async def settle(self, change: Change) -> None:
        """Return once a change that stops sending holds everywhere: every live node has
        acknowledged it on the bus (or the agents' own reread of the states has passed)."""
        if not change.stops_sending:
            return
        if self.bus is None:
            await asyncio.sleep(change.settle_seconds)
            return
        running = await self.read(lambda c: nodes.live(c, time.time()))
        await self.bus.fence(running, change.settle_seconds)
