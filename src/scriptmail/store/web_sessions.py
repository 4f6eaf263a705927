"""Customer-area sessions and failed-login counts.

The session cookie carries a random id; only its SHA-256 is stored, so a copy of the database
opens no session. Logging out deletes the row: the cookie is worthless from then on.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from scriptmail.store.accounts import User
from scriptmail.store.engine import upsert
from scriptmail.store.schema import login_failures, users, web_sessions

IDLE_SECONDS = 12 * 3600  # a session unused this long is over
TOUCH_SECONDS = 60.0  # its last use is written at most this often: not one write per page view


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    flash: str
    seen_at: float


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(connection: Connection, user: User, now: float) -> str:
    """A new session for `user`; returns the id for the cookie (never stored as such)."""
    session_id = secrets.token_urlsafe(32)
    connection.execute(
        insert(web_sessions).values(id_hash=_hash(session_id), user_id=user.id, csrf=secrets.token_urlsafe(32), created_at=now, seen_at=now)
    )
    return session_id


# Every page view reads its session and user: one statement, built once.
_SESSION_AND_USER = (
    select(web_sessions.c.user_id, web_sessions.c.csrf, web_sessions.c.flash, web_sessions.c.seen_at,
           users.c.email, users.c.operator, users.c.language)
    .join(users, users.c.id == web_sessions.c.user_id)
    .where(web_sessions.c.id_hash == bindparam("id_hash"))
)  # fmt: skip


def find_session(connection: Connection, session_id: str, now: float) -> Session | None:
    if not session_id or len(session_id) > 100:
        return None
    row = connection.execute(_SESSION_AND_USER, {"id_hash": _hash(session_id)}).first()
    if row is None or row.seen_at < now - IDLE_SECONDS:
        return None
    return Session(User(row.user_id, row.email, bool(row.operator), row.language), row.csrf, row.flash, row.seen_at)


def touch(connection: Connection, session_id: str, now: float, flash: str | None = None) -> None:
    """Mark the session used; set (or, with "", clear) its flash message."""
    values: dict = {"seen_at": now}
    if flash is not None:
        values["flash"] = flash[:500]
    connection.execute(update(web_sessions).where(web_sessions.c.id_hash == _hash(session_id)).values(**values))


def close_session(connection: Connection, session_id: str) -> None:
    connection.execute(delete(web_sessions).where(web_sessions.c.id_hash == _hash(session_id)))


def failures(connection: Connection, keys: list[str]) -> dict[str, tuple[int, float]]:
    rows = connection.execute(select(login_failures).where(login_failures.c.key.in_(keys))).all()
    return {row.key: (row.failures, row.last_at) for row in rows}


def record_failure(connection: Connection, keys: list[str], now: float) -> None:
    for key in keys:
        statement = upsert(connection, login_failures).values(key=key[:400], failures=1, last_at=now)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[login_failures.c.key], set_={"failures": login_failures.c.failures + 1, "last_at": now}
            )
        )


def clear_failures(connection: Connection, key: str) -> None:
    connection.execute(delete(login_failures).where(login_failures.c.key == key))


def close_other_sessions(connection: Connection, user: User, keep_session_id: str) -> int:
    """After a password change: every other session of `user` ends (a thief's included)."""
    return connection.execute(
        delete(web_sessions).where(web_sessions.c.user_id == user.id, web_sessions.c.id_hash != _hash(keep_session_id))
    ).rowcount
