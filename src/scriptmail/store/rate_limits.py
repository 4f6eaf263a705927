"""The API's per-token rate limit kept in the store, so that every web process and node shares it.

One row per token holds its theoretical arrival time (GCRA, web.throttle.gcra_take); one upsert
decides and records a request, so two processes never both take the last place. On PostgreSQL
the transaction commits without waiting for the WAL flush: losing the last few requests' count in
a crash only lets a token a few requests more, and costs no fsync per request.
"""

from __future__ import annotations

from sqlalchemy import Connection, case, func, literal, text

from scriptmail.store.engine import upsert
from scriptmail.store.schema import api_rate_limits


def take(connection: Connection, token_id: int, now: float, per_minute: int, burst: int) -> float:
    """0 when the token may make this request (and it is counted); else the seconds to wait."""
    if per_minute <= 0:
        return 0.0
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
    interval = 60.0 / per_minute
    limit = burst * interval + 1e-9
    table = api_rate_limits.c
    greatest = func.max if connection.dialect.name == "sqlite" else func.greatest
    base = greatest(table.tat, literal(now))
    allowed = base + interval - now <= limit
    statement = upsert(connection, api_rate_limits).values(token_id=token_id, tat=now + interval, ok=1)
    statement = statement.on_conflict_do_update(
        index_elements=[table.token_id],
        set_={"tat": case((allowed, base + interval), else_=table.tat), "ok": case((allowed, 1), else_=0)},
    ).returning(table.tat, table.ok)
    tat, ok = connection.execute(statement).one()
    if ok:
        return 0.0
    return max(tat, now) + interval - now - burst * interval


def forget(connection: Connection, token_id: int) -> None:
    """A revoked token's row (tests, and tidy stores)."""
    connection.execute(api_rate_limits.delete().where(api_rate_limits.c.token_id == token_id))
