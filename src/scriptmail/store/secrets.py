"""Keys every node must share (the VERP secret), created once by whichever node needs one first."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select

from scriptmail.store.engine import upsert
from scriptmail.store.schema import secrets


def shared_secret(connection: Connection, name: str, new: Callable[[], bytes]) -> bytes:
    """The secret `name`; the first caller stores `new()`, racing callers all get that one."""
    connection.execute(upsert(connection, secrets).values(name=name, value=new()).on_conflict_do_nothing())
    return connection.execute(select(secrets.c.value).where(secrets.c.name == name)).scalar_one()
