"""Filling a hosting's log directly in the store, fast: one message, many recipients (for the
tests of what reads the log in bulk, such as the exports)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, select, text

from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import messages, recipients

STATUSES = ("sent", "bounced", "expired", "deferred")


def fill_log(engine: Engine, hosting: str, count: int, subject: str = "=cmd|' /C calc'!A0", at: float | None = None) -> list[int]:
    """`count` recipients of one message of `hosting`, statuses in turn (STATUSES); their ids."""
    at = time.time() if at is None else at
    with for_writing(engine).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=hosting).id
        message_id = connection.execute(
            messages.insert().values(hosting_id=hosting_id, received_at=at, envelope_from="web@shop.example",
                                     subject=subject, size=100, origin="smtp", script="/var/www/form.php")
        ).inserted_primary_key[0]  # fmt: skip
        rows = [
            {"message_id": message_id, "hosting_id": hosting_id, "address": f"r{n}@sink.test", "domain": "sink.test",
             "status": STATUSES[n % len(STATUSES)], "queued_at": at, "next_attempt_at": at + 3600, "updated_at": at,
             "last_code": 550 if STATUSES[n % len(STATUSES)] == "bounced" else 250, "last_text": "-reply"}
            for n in range(count)
        ]  # fmt: skip
        for start in range(0, count, 5000):
            connection.execute(recipients.insert(), rows[start : start + 5000])
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:  # what autovacuum does to a store that grew: plans that use the indexes
            connection.execute(text("ANALYZE recipients"))
            connection.execute(text("ANALYZE messages"))
    with engine.connect() as connection:
        return list(connection.execute(select(recipients.c.id).where(recipients.c.message_id == message_id)).scalars())
