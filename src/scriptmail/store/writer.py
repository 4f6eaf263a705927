"""One writer thread per process, committing many operations per transaction (group commit).

Intake awaits the commit before it answers 250, so every acknowledged message is durable; with
SQLite's full fsync that costs one fsync per transaction, not one per message, and the event loop
never blocks on the database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from scriptmail.store import bus, pipeline
from scriptmail.store.activity import STRIPES
from scriptmail.store.engine import for_writing

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[Connection], Any]
# Runs many items of one kind with a few statements: (connection, items) -> one result per item.
BulkOperation = Callable[[Connection, list[Any]], list[Any]]

_STOP = object()
_UNDONE = {"40P01", "40001"}  # deadlock detected, serialization failure: PostgreSQL kept nothing
_ATTEMPTS = 3
# Advisory lock on a counter stripe (the first key marks scriptmail's stripes): a writer connection
# holds one for its life (session level); a transaction without one looks for a free one.
STRIPE_LOCK = 21332
_TRY_STRIPE = text(f"SELECT pg_try_advisory_xact_lock({STRIPE_LOCK}, :stripe)")
_TAKE_STRIPE = text(f"SELECT pg_try_advisory_lock({STRIPE_LOCK}, :stripe)")


class _Reconnected(Exception):
    """The connection broke before the transaction's COMMIT was sent: nothing of it was kept, and
    the next attempt runs on a new connection."""


class StoreUnavailable(Exception):
    """The database could not commit; the caller answers 451 and keeps nothing half-done."""


class Writer:
    """Runs write operations in batches, each thread on a connection of its own.

    SQLite has one writer at a time, so one thread; PostgreSQL commits concurrent transactions
    in parallel, and there several threads keep the network round trips of one commit from
    holding up the next.
    """

    def __init__(self, engine: Engine, max_batch: int = 500, commit_delay: float = 0.002, threads: int | None = None) -> None:
        self._engine = for_writing(engine)
        self._striped = engine.dialect.name != "sqlite"
        if self._striped:
            # An engine of the writer's own, so that only its connections look for queued writes.
            self._engine = self._engine.execution_options()
            pipeline.attach(self._engine)
        self._max_batch = max_batch
        self._commit_delay = commit_delay
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        count = threads if threads is not None else (1 if engine.dialect.name == "sqlite" else 2)
        self._threads = [
            threading.Thread(target=self._run, name=f"store-writer-{n}", daemon=True) for n in range(count)
        ]
        self._started = False
        self._counting = threading.Lock()
        self._database = engine
        self._local = threading.local()
        self._lock_fd: int | None = None
        self.bus: bus.Bus | None = None  # gets the notices of SQLite transactions after their commit
        self.commits = 0
        self.operations = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._lock_fd = _write_lock(self._database)
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        if self._started:
            for _ in self._threads:
                self._queue.put(_STOP)
            for thread in self._threads:
                thread.join()
            self._started = False
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            log.info("store writer stopped: %d operations in %d commits", self.operations, self.commits)

    def submit_nowait(self, operation: Operation) -> concurrent.futures.Future:
        return self.submit_bulk_nowait(_one_by_one, operation)

    def submit_bulk_nowait(self, bulk: BulkOperation, item: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((bulk, item, future))
        return future

    async def submit(self, operation: Callable[[Connection], T]) -> T:
        """Run `operation` in the next group commit and return its result once durable."""
        return await asyncio.wrap_future(self.submit_nowait(operation))

    async def submit_bulk(self, bulk: BulkOperation, item: Any) -> Any:
        """Like submit, but every item of the same `bulk` in one commit is written by one call."""
        return await asyncio.wrap_future(self.submit_bulk_nowait(bulk, item))

    def _run(self) -> None:
        busy = False
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._drop_connection()
                return
            if busy and self._commit_delay:
                # Under load, wait a moment for more operations to share this commit (like
                # PostgreSQL's commit_delay): fewer, larger transactions cost far less per message.
                time.sleep(self._commit_delay)
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            # A future cancelled while waiting is dropped; once running it can no longer be
            # cancelled, so an operation that starts always reports its outcome.
            batch = [entry for entry in batch if entry[2].set_running_or_notify_cancel()]
            busy = len(batch) > 1
            if batch:
                self._commit(batch)
            if stop:
                self._drop_connection()
                return

    def _commit(self, batch: list[tuple[BulkOperation, Any, concurrent.futures.Future]]) -> None:
        try:
            results = self._attempts(batch)
        except Exception as error:  # noqa: BLE001 - isolate the failing operation below
            if len(batch) == 1:
                self._fail(batch[0][2], error)
                return
            log.warning("group commit of %d operations failed (%s); retrying one by one", len(batch), error)
            for entry in batch:
                try:
                    (result,) = self._attempts([entry])
                except Exception as single_error:  # noqa: BLE001
                    self._fail(entry[2], single_error)
                else:
                    entry[2].set_result(result)
            return
        for entry, result in zip(batch, results):
            entry[2].set_result(result)

    def _attempts(self, batch: list[tuple[BulkOperation, Any, concurrent.futures.Future]]) -> list[Any]:
        """The transaction, run again when PostgreSQL undid it to break a deadlock or a
        serialization conflict with another writer: nothing of it was kept, and its operations
        are re-runnable (a failed group is already re-run one by one)."""
        for attempt in range(_ATTEMPTS):
            try:
                return self._transaction(batch)
            except _Reconnected as reconnected:
                if attempt == _ATTEMPTS - 1:
                    raise reconnected.__cause__ from None
                continue  # the database dropped the connection before anything of this was committed
            except DBAPIError as error:
                if getattr(error.orig, "sqlstate", None) not in _UNDONE or attempt == _ATTEMPTS - 1:
                    raise
                log.info("store transaction undone by the database (%s); running it again", str(error.orig).splitlines()[0])
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # the other side goes first
        raise AssertionError("unreachable")

    def _transaction(self, batch: list[tuple[BulkOperation, Any, concurrent.futures.Future]]) -> list[Any]:
        """One transaction; each kind of bulk operation runs once with all of its items."""
        kinds: dict[BulkOperation, list[int]] = {}
        for position, (bulk, _, _) in enumerate(batch):
            kinds.setdefault(bulk, []).append(position)
        results: list[Any] = [None] * len(batch)
        connection = self._connection()
        committing = False
        try:
            with self._exclusive(), connection.begin():
                if self._striped:
                    owned = getattr(self._local, "owned", None)
                    connection.info["stripe"] = owned if owned is not None else self._own_stripe(connection)
                    pipeline.start(connection)
                try:
                    for bulk, positions in kinds.items():
                        outcome = bulk(connection, [batch[p][1] for p in positions])
                        for position, result in zip(positions, outcome):
                            results[position] = result
                    committing = True
                    if self._striped:
                        pipeline.commit(connection)  # the queued writes and the COMMIT: one round trip
                finally:
                    # info lives with the DBAPI connection: no later user adds to a stripe it does
                    # not hold, or finds writes queued by a transaction that rolled back. (A
                    # connection the database dropped takes its info with it.)
                    if not connection.invalidated:
                        connection.info.pop("stripe", None)
                        pipeline.discard(connection)
                announced = bus.take_announced(connection)
        except DBAPIError as error:
            if error.connection_invalidated:
                self._drop_connection()
                if not committing:
                    raise _Reconnected from error
            raise
        if announced and self.bus is not None:
            self.bus.send(announced)
        with self._counting:
            self.commits += 1
            self.operations += len(batch)
        return results

    def _connection(self) -> Connection:
        """This thread's connection, kept from one transaction to the next: taking one from the
        pool for each would cost a round trip (its liveness ping) per commit."""
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed or connection.invalidated:
            self._drop_connection()
            connection = self._local.connection = self._engine.connect()
            if self._striped:
                self._local.owned = self._take_stripe(connection)
        return connection

    def _take_stripe(self, connection: Connection) -> int | None:
        """A counter stripe this connection holds for as long as it lives (a session-level lock,
        which the database lets go with the connection): no other writer of any process or node
        adds to it, and no transaction asks for one again. None when every stripe is held."""
        try:
            for stripe in random.sample(range(STRIPES), STRIPES):
                if connection.execute(_TAKE_STRIPE, {"stripe": stripe}).scalar():
                    return stripe
            return None
        finally:
            connection.commit()  # the lock stays; the transaction the statements began must not

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        owned = getattr(self._local, "owned", None)
        self._local.connection = None
        self._local.owned = None
        if connection is not None:
            with contextlib.suppress(Exception):
                if owned is not None:
                    # Back in the pool it would keep its stripe for ever: close it for good.
                    connection.invalidate()
                connection.close()

    def _own_stripe(self, connection: Connection) -> int:
        """When every stripe is owned (more writers than stripes), one that no other transaction
        holds now: concurrent writers then rarely queue on one hosting's counter rows, each holding
        its row locks through its commit's WAL flush (schema._stripe). A thread keeps its stripe
        while it is free; after a few taken ones it shares one, which only costs a wait."""
        last = getattr(self._local, "stripe", None)
        tries = [last] if last is not None else []
        tries += random.sample(range(STRIPES), 3)
        for stripe in tries:
            if connection.execute(_TRY_STRIPE, {"stripe": stripe}).scalar():
                break
        self._local.stripe = stripe
        return stripe

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """SQLite: processes sharing the file take turns through a blocking file lock, handed on
        at once, instead of SQLite's busy handler, which sleeps and retries (up to 100 ms a go)."""
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @staticmethod
    def _fail(future: concurrent.futures.Future, error: Exception) -> None:
        # SQLAlchemy wraps every driver's errors: a constraint violation is the operation's own
        # fault; any other database error means the store cannot take writes now.
        if isinstance(error, DBAPIError) and not isinstance(error, IntegrityError):
            future.set_exception(StoreUnavailable(str(error.orig or error).splitlines()[0]))
        else:
            future.set_exception(error)


def _write_lock(engine: Engine) -> int | None:
    """The lock file beside an SQLite database file (None for PostgreSQL or an in-memory store)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    path = Path(f"{database}.writelock")
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _one_by_one(connection: Connection, operations: list[Operation]) -> list[Any]:
    return [operation(connection) for operation in operations]
