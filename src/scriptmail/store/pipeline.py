"""Writes nobody reads back in their transaction, sent to PostgreSQL together with its COMMIT.

On PostgreSQL every statement is a round trip, and the writer thread that waits for its answer must
then get the GIL back from the busy event loop (up to the 5 ms switch interval). An intake commit
made eleven of them, so waiting, not work, set the rate. Statements queued here leave in one psycopg
pipeline with the COMMIT: one round trip for all of them.

Only the store writer queues (`start`); elsewhere, and on SQLite, `later` runs the statement at once.
Anything else run on the connection sends the queue first, so the transaction reads its own writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

_QUEUE = "scriptmail.pipeline"
_KEPT = 256
_SQL: dict[tuple[Executable, tuple[str, ...]], tuple[str, dict[str, Callable[[Any], Any]]]] = {}

Rows = Sequence[Mapping[str, Any]]


def attach(engine: Engine) -> None:
    """Make every statement run through `engine` send the queued ones first."""

    @event.listens_for(engine, "before_cursor_execute")
    def _queued_first(connection: Connection, *_: Any) -> None:
        if connection.info.get(_QUEUE):
            send(connection)


def start(connection: Connection) -> None:
    """From now on, `later` on this connection queues (until `commit` or `discard`)."""
    connection.info[_QUEUE] = []


def discard(connection: Connection) -> None:
    """Forget what is queued: the transaction rolled back, or it is over."""
    connection.info.pop(_QUEUE, None)


def later(connection: Connection, statement: Executable, rows: Rows) -> None:
    """Run `statement` for each of `rows` (all with the same keys), now or with the commit.

    `statement` must be built once (a module constant or a cached builder): its SQL is compiled
    once per set of keys and kept with it.
    """
    if not rows:
        return
    queue = connection.info.get(_QUEUE)
    if queue is None:
        connection.execute(statement, list(rows))
        return
    sql, processors = _compiled(connection, statement, tuple(rows[0]))
    if processors:
        rows = [{key: processors[key](value) if key in processors else value for key, value in row.items()} for row in rows]
    queue.append((sql, rows))


def send(connection: Connection) -> None:
    """Send what is queued now, in one round trip."""
    _pipelined(connection, commit=False)


def commit(connection: Connection) -> None:
    """Send what is queued and COMMIT, in one round trip. The transaction's own commit that
    follows finds nothing left to do."""
    _pipelined(connection, commit=True)


def _pipelined(connection: Connection, commit: bool) -> None:
    queue = connection.info.get(_QUEUE)
    if not queue and not commit:
        return
    connection.info[_QUEUE] = []
    raw = connection.connection.driver_connection
    try:
        with raw.pipeline():
            with raw.cursor() as cursor:
                for sql, rows in queue or ():
                    cursor.executemany(sql, rows)
            if commit:
                raw.commit()
    except connection.dialect.loaded_dbapi.Error as error:
        # As if SQLAlchemy had run it: the writer tells constraint violations, retryable aborts and
        # an unavailable store apart by SQLAlchemy's exception classes.
        statements = "; ".join(sql for sql, _ in queue or ()) + ("; COMMIT" if commit else "")
        raise DBAPIError.instance(statements, None, error, connection.dialect.loaded_dbapi.Error, dialect=connection.dialect) from error


def _compiled(connection: Connection, statement: Executable, keys: tuple[str, ...]) -> tuple[str, dict[str, Callable[[Any], Any]]]:
    found = _SQL.get((statement, keys))
    if found is None:
        compiled = statement.compile(dialect=connection.dialect, column_keys=list(keys), for_executemany=True)
        if set(compiled.params) - set(keys):
            # Values built into the statement would have to travel with every row: not worth it.
            raise ValueError("store.pipeline takes statements whose every value comes from the rows")
        processors = {key: process for key, process in (compiled._bind_processors or {}).items() if key in keys}
        found = (compiled.string, processors)
        if len(_SQL) < _KEPT:  # a statement built per call would otherwise fill memory
            _SQL[(statement, keys)] = found
    return found
