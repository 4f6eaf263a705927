"""The MTA-STS policies delivery fetched, kept in the store for every node and past restarts."""

from __future__ import annotations

import asyncio

from sqlalchemy import Connection, Engine, delete, select

from scriptmail.mta_sts.cache import Cached
from scriptmail.mta_sts.policy import Mode, Policy
from scriptmail.store.engine import upsert
from scriptmail.store.schema import mta_sts_policies as table
from scriptmail.store.writer import Writer


def load(connection: Connection, domain: str) -> Cached | None:
    """The policy last fetched for `domain`, fresh or not; None if none was, or its row is unreadable."""
    row = connection.execute(select(table).where(table.c.domain == domain)).first()
    if row is None:
        return None
    try:
        mode = Mode(row.mode)
    except ValueError:
        return None
    mx = tuple(line for line in row.mx.split("\n") if line)
    return Cached(Policy(mode, mx, int(row.max_age)), row.policy_id, float(row.fetched_at))


def save(connection: Connection, domain: str, cached: Cached) -> None:
    values = {
        "policy_id": cached.policy_id,
        "mode": cached.policy.mode.value,
        "mx": "\n".join(cached.policy.mx),
        "max_age": cached.policy.max_age,
        "fetched_at": cached.fetched_at,
    }
    statement = upsert(connection, table).values(domain=domain, **values)
    connection.execute(statement.on_conflict_do_update(index_elements=[table.c.domain], set_=values))


def forget(connection: Connection, domain: str) -> None:
    """A policy past its max_age with no record left: the domain has none any more."""
    connection.execute(delete(table).where(table.c.domain == domain))


class StoredPolicies:
    """What PolicySource keeps in the store: reads on the caller's thread pool, writes through the
    writer (one writer per SQLite file)."""

    def __init__(self, engine: Engine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    async def load(self, domain: str) -> Cached | None:
        def read() -> Cached | None:
            with self._engine.connect() as connection:
                return load(connection, domain)

        return await asyncio.to_thread(read)

    async def save(self, domain: str, cached: Cached) -> None:
        await self._writer.submit(lambda connection: save(connection, domain, cached))

    async def forget(self, domain: str) -> None:
        await self._writer.submit(lambda connection: forget(connection, domain))
