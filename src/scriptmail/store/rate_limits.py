"""The API's per-token rate limit kept in the store, so that every web process and node shares it.

One row per token holds its theoretical arrival time (GCRA, web.throttle.gcra_take); one upsert
decides and records a request, so two processes never both take the last place. A count lost in a
crash only lets a token a few requests more, so no request waits for the disk:
- on PostgreSQL the transaction commits without waiting for the WAL flush;
- on SQLite (one machine) the rows live in a file of their own beside the database, written
  without fsync and under its own lock, so API calls never queue behind the mail's commits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, case, create_engine, event, func, literal, or_, select, text

from scriptmail.store.engine import upsert
from scriptmail.store.schema import api_rate_limits, api_tokens


def take(connection: Connection, token_id: int, now: float, per_minute: int, burst: int, cost: int = 1) -> float:
    """0 when the token may make `cost` requests (and they are counted); else the seconds to wait."""
    if per_minute <= 0:
        return 0.0
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
    interval = 60.0 / per_minute
    step = cost * interval
    limit = burst * interval + 1e-9
    table = api_rate_limits.c
    greatest = func.max if connection.dialect.name == "sqlite" else func.greatest
    base = greatest(table.tat, literal(now))
    allowed = base + step - now <= limit
    statement = upsert(connection, api_rate_limits).values(token_id=token_id, tat=now + step, ok=1)
    statement = statement.on_conflict_do_update(
        index_elements=[table.token_id],
        set_={"tat": case((allowed, base + step), else_=table.tat), "ok": case((allowed, 1), else_=0)},
    ).returning(table.tat, table.ok)
    tat, ok = connection.execute(statement).one()
    if ok:
        return 0.0
    return max(tat, now) + step - now - burst * interval


@functools.cache
def beside(database: str) -> Engine:
    """The rate-limit file of the SQLite store at path `database` (`<database>.ratelimits`),
    shared by its processes."""
    engine = create_engine(f"sqlite:///{database}.ratelimits", connect_args={"timeout": 10})

    @event.listens_for(engine, "connect")
    def _unsynced(dbapi_connection, _record) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    with engine.begin() as connection:  # several processes may get here first at once
        connection.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS api_rate_limits (token_id INTEGER PRIMARY KEY, tat FLOAT NOT NULL, ok INTEGER NOT NULL DEFAULT 1)"
        )
    return engine


def take_beside(database: str, token_id: int, now: float, per_minute: int, burst: int, cost: int = 1) -> float:
    """take() on the rate-limit file of the SQLite store at path `database`."""
    with beside(database).begin() as connection:
        return take(connection, token_id, now, per_minute, burst, cost)


def live_tokens(connection: Connection) -> list[int]:
    """The ids of the tokens not revoked (read from the store, for the SQLite file beside it)."""
    return list(connection.execute(select(api_tokens.c.id).where(api_tokens.c.revoked_at.is_(None))).scalars())


def prune(connection: Connection, now: float, live: Iterable[int] | None = None) -> int:
    """Delete the rows that say nothing any more; how many.

    - A revoked (or deleted) token's row: it makes no more requests.
    - A bucket full again (`tat <= now`): take() decides the same with no row at all.

    `live` lists the tokens not revoked; None reads them from api_tokens in the same database (the
    PostgreSQL store; SQLite's file beside the store cannot join it)."""
    table = api_rate_limits.c
    alive = select(api_tokens.c.id).where(api_tokens.c.revoked_at.is_(None)) if live is None else sorted(set(live))
    return connection.execute(api_rate_limits.delete().where(or_(table.tat <= now, table.token_id.not_in(alive)))).rowcount


def prune_beside(database: str, now: float, live: Iterable[int]) -> int:
    """prune() on the rate-limit file of the SQLite store at path `database`."""
    with beside(database).begin() as connection:
        return prune(connection, now, live)


def forget(connection: Connection, token_id: int) -> None:
    """A revoked token's row (tests, and tidy stores)."""
    connection.execute(api_rate_limits.delete().where(api_rate_limits.c.token_id == token_id))
