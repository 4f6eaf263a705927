"""A site's slow-down as every delivery process and node sees it (shaping.slowdown decides).

A process told to slow down reports it here in one short transaction on the site's row, so that
two processes hit by the same 421 count one complaint; every process reads the live rows about
once a second. The rows sit where store.site_shares keeps the site counts (the PostgreSQL store;
on SQLite the unsynced file beside the database): a lost row only lets a site recover early.
"""

from __future__ import annotations

import functools

from sqlalchemy import Connection, Engine, delete, select, update

from scriptmail.shaping import slowdown
from scriptmail.shaping.slowdown import Slowdown
from scriptmail.store.engine import upsert
from scriptmail.store.schema import site_slowdowns

FORGET_AFTER = 86400.0  # rows over this long ago are deleted


def report(connection: Connection, site: str, now: float, reason: str, pause: float, slow_seconds: float) -> Slowdown:
    """The site asked this process to slow down: the shared state after that complaint."""
    connection.execute(
        upsert(connection, site_slowdowns)
        .values(site=site, level=0, slowed_at=0.0, paused_until=0.0, recovers_at=0.0, ends_at=0.0, reason="")
        .on_conflict_do_nothing()
    )
    query = select(site_slowdowns).where(site_slowdowns.c.site == site)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).one()
    before = Slowdown(row.level, row.slowed_at, row.paused_until, row.recovers_at, row.reason)
    after, _ = slowdown.complain(before, now, reason, pause, slow_seconds)
    connection.execute(
        update(site_slowdowns)
        .where(site_slowdowns.c.site == site)
        .values(
            level=after.level, slowed_at=after.slowed_at, paused_until=after.paused_until,
            recovers_at=after.recovers_at, ends_at=after.ends_at(slow_seconds), reason=after.reason,
        )
    )  # fmt: skip
    connection.execute(delete(site_slowdowns).where(site_slowdowns.c.ends_at < now - FORGET_AFTER))
    return after


def live(connection: Connection, now: float) -> dict[str, Slowdown]:
    """The sites slowed or paused now (a handful of rows, read by an index)."""
    rows = connection.execute(select(site_slowdowns).where(site_slowdowns.c.ends_at > now)).all()
    return {row.site: Slowdown(row.level, row.slowed_at, row.paused_until, row.recovers_at, row.reason) for row in rows}


@functools.cache
def ensure_beside(engine: Engine) -> None:
    """The table in SQLite's shaping file (the PostgreSQL store has it from its migrations)."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            site_slowdowns.create(connection, checkfirst=True)
