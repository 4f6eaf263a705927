"""One writer thread per process, committing many operations per transaction (group commit).

Intake awaits the commit before it answers 250, so every acknowledged message is durable; with
SQLite's full fsync that costs one fsync per transaction, not one per message, and the event loop
never blocks on the database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[Connection], Any]

_STOP = object()


class StoreUnavailable(Exception):
    """The database could not commit; the caller answers 451 and keeps nothing half-done."""


class Writer:
    """Runs write operations in batches on one connection of its own."""

    def __init__(self, engine: Engine, max_batch: int = 500) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._started = False
        self.commits = 0
        self.operations = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(_STOP)
            self._thread.join()
            self._started = False

    def submit_nowait(self, operation: Operation) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((operation, future))
        return future

    async def submit(self, operation: Callable[[Connection], T]) -> T:
        """Run `operation` in the next group commit and return its result once durable."""
        return await asyncio.wrap_future(self.submit_nowait(operation))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
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
            batch = [entry for entry in batch if entry[1].set_running_or_notify_cancel()]
            if batch:
                self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[Operation, concurrent.futures.Future]]) -> None:
        try:
            results = self._transaction([operation for operation, _ in batch])
        except Exception as error:  # noqa: BLE001 - isolate the failing operation below
            if len(batch) == 1:
                self._fail(batch[0][1], error)
                return
            log.warning("group commit of %d operations failed (%s); retrying one by one", len(batch), error)
            for operation, future in batch:
                try:
                    (result,) = self._transaction([operation])
                except Exception as single_error:  # noqa: BLE001
                    self._fail(future, single_error)
                else:
                    future.set_result(result)
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)

    def _transaction(self, operations: list[Operation]) -> list[Any]:
        with self._engine.begin() as connection:
            results = [operation(connection) for operation in operations]
        self.commits += 1
        self.operations += len(operations)
        return results

    @staticmethod
    def _fail(future: concurrent.futures.Future, error: Exception) -> None:
        from sqlalchemy.exc import DBAPIError, OperationalError

        if isinstance(error, (OperationalError, DBAPIError)) and not isinstance(error.orig, _IntegrityErrors):
            future.set_exception(StoreUnavailable(str(error.orig or error).splitlines()[0]))
        else:
            future.set_exception(error)


def _integrity_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)


_IntegrityErrors = _integrity_errors()
