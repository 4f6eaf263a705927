"""What every web request handler needs: the store, its writer, the settings, the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine

from scriptmail.config import Settings
from scriptmail.store import nodes
from scriptmail.store.bus import Bus
from scriptmail.store.hosting_control import Change
from scriptmail.store.writer import Writer

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

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run a read-only query in a worker thread: the event loop keeps serving."""

        def run() -> T:
            with self.engine.connect() as connection:
                return query(connection)

        return await asyncio.to_thread(run)

    async def write(self, operation: Callable[[Connection], Any]) -> Any:
        return await self.writer.submit(operation)

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
