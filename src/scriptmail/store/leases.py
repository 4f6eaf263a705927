"""Job leases: a job that must run on one node at a time runs where its lease row is held.

A lease is taken when its row is free, expired, or already ours; a crashed holder's lease runs out
and another node takes the job over. Everything happens in one conditional statement, so two
nodes racing for a lease never both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, or_, select, update

from scriptmail.store.engine import upsert
from scriptmail.store.schema import leases


def acquire(connection: Connection, name: str, owner: str, seconds: float, now: float) -> bool:
    """Take or extend the lease `name` for `seconds`; False while another owner holds it."""
    connection.execute(upsert(connection, leases).values(name=name, owner=owner, until=0.0).on_conflict_do_nothing())
    taken = connection.execute(
        update(leases)
        .where(leases.c.name == name, or_(leases.c.owner == owner, leases.c.until < now))
        .values(owner=owner, until=now + seconds)
    ).rowcount
    return taken == 1


def release(connection: Connection, name: str, owner: str) -> None:
    connection.execute(delete(leases).where(leases.c.name == name, leases.c.owner == owner))


def holder(connection: Connection, name: str, now: float) -> str | None:
    """Who holds the lease now, if anyone."""
    return connection.execute(select(leases.c.owner).where(leases.c.name == name, leases.c.until >= now)).scalar()
