"""A site's connections and rate counted for every delivery process and node at once.

Each call is one short transaction that locks the site's row, so two processes never both take
the last connection or the last token; the decisions are shaping.budget's. Nothing here waits for
the disk: a count lost in a crash only lets a site a few recipients more, and a crashed process's
connections stop counting when their lease runs out.
- PostgreSQL: the store's own tables, committed without waiting for the WAL flush;
- SQLite: a file of its own beside the database (`<database>.sites`), unsynced and under its own
  lock, so shaping never queues behind the mail's commits (as store.rate_limits does).
"""

from __future__ import annotations

import functools

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select, update

from scriptmail.shaping import budget
from scriptmail.store.engine import upsert
from scriptmail.store.schema import site_budgets, site_slots

LEASE = 30.0  # seconds a process's connections count after its last renewal


def reserve(
    connection: Connection, site: str, need: int, want: int, per_minute: int, per_hour: int, now: float
) -> tuple[int, float]:
    """Take the site's rate tokens, at least `need` and up to `want` (budget.grant): (granted,
    seconds to wait when none were)."""
    limits = budget.rates(per_minute, per_hour)
    if not limits:
        return max(need, want), 0.0
    minute_tat, hour_tat = _locked(connection, site)
    tats = tuple(tat for tat, n in ((minute_tat, per_minute), (hour_tat, per_hour)) if n > 0)
    granted, after, wait = budget.grant(limits, tats, need, want, now)
    if granted:
        new = iter(after)
        values = {}
        if per_minute > 0:
            values["minute_tat"] = next(new)
        if per_hour > 0:
            values["hour_tat"] = next(new)
        connection.execute(update(site_budgets).where(site_budgets.c.site == site).values(**values))
    return granted, wait


def open_slot(connection: Connection, site: str, holder: str, limit: int, now: float, lease: float = LEASE) -> bool:
    """One more connection to the site for `holder` if every live holder's together stay within `limit`."""
    _locked(connection, site)
    rows = connection.execute(
        select(site_slots.c.holder, site_slots.c.connections).where(site_slots.c.site == site, site_slots.c.expires_at > now)
    ).all()
    here = sum(n for who, n in rows if who == holder)
    if not budget.may_open(limit, sum(n for who, n in rows if who != holder), here):
        return False
    statement = upsert(connection, site_slots).values(site=site, holder=holder, connections=1, expires_at=now + lease)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[site_slots.c.site, site_slots.c.holder],
            set_={"connections": here + 1, "expires_at": now + lease},
        )
    )
    return True


def close_slot(connection: Connection, site: str, holder: str) -> None:
    """A connection of `holder` to the site closed."""
    key = (site_slots.c.site == site) & (site_slots.c.holder == holder)
    connection.execute(update(site_slots).where(key).values(connections=site_slots.c.connections - 1))
    connection.execute(delete(site_slots).where(key, site_slots.c.connections <= 0))


def renew(connection: Connection, holder: str, now: float, lease: float = LEASE) -> None:
    """`holder` still runs: its connections keep counting for another `lease` seconds."""
    connection.execute(update(site_slots).where(site_slots.c.holder == holder).values(expires_at=now + lease))
    connection.execute(delete(site_slots).where(site_slots.c.expires_at < now - lease))  # others' long-dead leases


def forget(connection: Connection, holder: str) -> None:
    """A process starting under this name: what a previous run of it held is gone."""
    connection.execute(delete(site_slots).where(site_slots.c.holder == holder))


def open_connections(connection: Connection, now: float) -> dict[str, int]:
    """The live connections per site, every process and node together (for the operator)."""
    rows = connection.execute(
        select(site_slots.c.site, func.sum(site_slots.c.connections))
        .where(site_slots.c.expires_at > now)
        .group_by(site_slots.c.site)
    ).all()
    return {site: int(count) for site, count in rows if count}


def _locked(connection: Connection, site: str) -> tuple[float, float]:
    """The site's row, created if new and locked until the transaction ends. One statement: an
    upsert that finds the row locks it as an update does, so the lock costs no round trip of its own."""
    statement = upsert(connection, site_budgets).values(site=site, minute_tat=0.0, hour_tat=0.0)
    statement = statement.on_conflict_do_update(index_elements=[site_budgets.c.site], set_={"site": statement.excluded.site})
    minute_tat, hour_tat = connection.execute(statement.returning(site_budgets.c.minute_tat, site_budgets.c.hour_tat)).one()
    return minute_tat, hour_tat


@functools.cache
def beside(database: str) -> Engine:
    """The shaping file of the SQLite store at path `database`, shared by its processes. Each
    transaction takes the file's write lock at BEGIN, so that the read of a count and its update
    are one step (a deferred transaction could not upgrade after another process wrote)."""
    engine = create_engine(f"sqlite:///{database}.sites", connect_args={"timeout": 10})

    @event.listens_for(engine, "connect")
    def _unsynced(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    @event.listens_for(engine, "begin")
    def _immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    with engine.begin() as connection:  # several processes may get here first at once
        site_budgets.create(connection, checkfirst=True)
        site_slots.create(connection, checkfirst=True)
    return engine


class SiteShares:
    """The shared counts of one store, each call in a transaction of its own (blocking: call it from a thread)."""

    def __init__(self, engine: Engine) -> None:
        sqlite = engine.dialect.name == "sqlite"
        self.engine = beside(engine.url.database) if sqlite else unsynced(engine.url.render_as_string(hide_password=False))

    def run(self, work, *args):
        with self.engine.begin() as connection:
            return work(connection, *args)


@functools.cache
def unsynced(url: str) -> Engine:
    """PostgreSQL: a small pool of the store's own whose commits do not wait for the WAL flush
    (set once per connection, not per transaction: one round trip less while a site's row is locked)."""
    return create_engine(url, pool_size=2, max_overflow=6, pool_pre_ping=True, connect_args={"options": "-c synchronous_commit=off"})
