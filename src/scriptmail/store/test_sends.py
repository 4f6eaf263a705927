"""Test messages ("Send a test message"): the hourly allowance, the row written before intake gets
the message, and what became of it (intake's verdict, the signature, the receiving server's reply)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update

from scriptmail.store.schema import hostings, recipients, test_sends

WINDOW = 3600.0  # the allowance is per rolling hour
SHOWN = 10  # the latest tests the page lists


class TooManyTests(Exception):
    """The hosting has used its test messages of the last hour; `retry_after` seconds until one frees."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"at most {limit} test messages per hour; try again in {retry_after} s")
        self.limit = limit
        self.retry_after = retry_after


def reserve(connection: Connection, hosting_id: int, sender: str, address: str, by: str, now: float, limit: int) -> int:
    """Count a test against the hour and return its id; TooManyTests when the hour is used up.

    The hosting's row is locked first (PostgreSQL), so two nodes cannot both take the last one."""
    locked = select(hostings.c.id).where(hostings.c.id == hosting_id)
    if connection.dialect.name == "postgresql":
        locked = locked.with_for_update()
    connection.execute(locked)
    since = now - WINDOW
    used = connection.execute(
        select(func.count(), func.min(test_sends.c.created_at)).where(
            test_sends.c.hosting_id == hosting_id, test_sends.c.created_at > since
        )
    ).one()
    if used[0] >= limit:
        raise TooManyTests(limit, max(1, int((used[1] or now) + WINDOW - now) + 1))
    return connection.execute(
        test_sends.insert().values(hosting_id=hosting_id, created_at=now, requested_by=by[:320], sender=sender[:320],
                                   address=address[:320])
    ).inserted_primary_key[0]  # fmt: skip


def record(connection: Connection, test_id: int, queue_id: int | None = None, refused: str = "", dkim: str = "",
           dkim_domain: str = "") -> None:  # fmt: skip
    """What intake did with the test: its queue id and signature, or why it refused it."""
    connection.execute(
        update(test_sends).where(test_sends.c.id == test_id)
        .values(queue_id=queue_id, refused=refused[:2000], dkim=dkim, dkim_domain=dkim_domain[:253])
    )  # fmt: skip


_COLUMNS = (
    test_sends.c.id, test_sends.c.created_at, test_sends.c.requested_by, test_sends.c.sender, test_sends.c.address,
    test_sends.c.queue_id, test_sends.c.refused, test_sends.c.dkim, test_sends.c.dkim_domain,
    recipients.c.id.label("recipient_id"), recipients.c.status, recipients.c.attempts, recipients.c.last_code,
    recipients.c.last_text, recipients.c.updated_at,
)  # fmt: skip


def _query(hosting_id: int) -> Any:
    joined = test_sends.outerjoin(recipients, recipients.c.message_id == test_sends.c.queue_id)
    return select(*_COLUMNS).select_from(joined).where(test_sends.c.hosting_id == hosting_id)


def result(connection: Connection, hosting_id: int, test_id: int) -> dict[str, Any] | None:
    """One test of this hosting with its recipient's state; None for another hosting's or none."""
    row = connection.execute(_query(hosting_id).where(test_sends.c.id == test_id)).first()
    return None if row is None else dict(row._mapping)


def latest(connection: Connection, hosting_id: int, limit: int = SHOWN) -> list[dict[str, Any]]:
    """The hosting's latest tests, newest first."""
    rows = connection.execute(_query(hosting_id).order_by(test_sends.c.id.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]


def used(connection: Connection, hosting_id: int, now: float) -> int:
    """Tests counted in the last hour."""
    query = select(func.count()).where(test_sends.c.hosting_id == hosting_id, test_sends.c.created_at > now - WINDOW)
    return int(connection.execute(query).scalar_one())
