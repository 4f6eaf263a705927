"""Running a purge: batches of deletions under a lease, then the hosting sends again by itself.

The customer, the operator or the API only starts a purge (state `purging`); whichever process
takes the purge's lease first runs it, and if that process dies the lease runs out and another
node (or the next start) finishes the job. Mail that arrived after the purge began stays held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from scriptmail.control.states import Action, Actor, TransitionNotAllowed
from scriptmail.store import leases
from scriptmail.store.hosting_control import Change, change_state, purge_batch

log = logging.getLogger(__name__)

T = TypeVar("T")
Run = Callable[[Callable[[Connection], Any]], Any]  # runs an operation in its own write transaction

LEASE_SECONDS = 60.0
# About 50 ms of work per batch on SQLite, whose single writer intake shares. PostgreSQL locks
# rows, not the database: other hostings' commits go on during a batch, so batches can be larger.
BATCH = {"sqlite": 2000, "postgresql": 4000}


def lease_name(hosting: str) -> str:
    return f"purge:{hosting}"


def run_purge(
    run: Run,
    hosting: str,
    owner: str,
    clock: Callable[[], float] = time.time,
    stopping: Callable[[], bool] = lambda: False,
) -> tuple[int, Change] | None:
    """Purge `hosting` if nobody else is; returns (recipients purged, the final change) or None
    (someone else runs it, or this process is stopping: the lease is handed back for the next run)."""
    name = lease_name(hosting)
    if not run(lambda c: leases.acquire(c, name, owner, LEASE_SECONDS, clock())):
        return None
    purged = 0
    started = clock()

    def batch(connection: Connection) -> int | None:
        if not leases.acquire(connection, name, owner, LEASE_SECONDS, clock()):
            return None  # our lease ran out and another node took the job over
        return purge_batch(connection, hosting, clock(), limit=BATCH.get(connection.dialect.name, 2000))

    try:
        while True:
            if stopping():
                run(lambda c: leases.release(c, name, owner))
                return None
            count = run(batch)
            if count is None:
                log.warning("%s: purge lease lost after %d recipient(s); another node goes on", hosting, purged)
                return None
            purged += count
            if count == 0:
                break

        def finish(connection: Connection) -> Change | None:
            leases.release(connection, name, owner)
            try:
                return change_state(
                    connection, hosting, Action.PURGE_DONE, Actor.SYSTEM, clock(), reason=f"{purged} recipient(s) purged"
                )
            except TransitionNotAllowed:
                return None  # an operator set another state meanwhile

        done = run(finish)
    except BaseException:
        run(lambda c: leases.release(c, name, owner))
        raise
    log.info("%s: %d recipient(s) purged in %.2f s; sending again", hosting, purged, clock() - started)
    return (purged, done) if done is not None else None
