"""A store that already holds a large queue, for the "cost does not grow with the queue" scenario.

Half the recipients wait (deferred, next attempt a day away) in one hosting, half are held by a
blocked hosting, as a busy platform's store looks after a provider outage or a wave of blocks. Neither
hosting is the benchmark's: the mail measured is accepted and delivered beside the backlog, never
mixed with it. Rows are written with the store's own schema, in batches, straight into the database
(going through SMTP would take hours for a million recipients).
"""

from __future__ import annotations

import time

from sqlalchemy import insert, update

from scriptmail.model import HostingState, Origin, RecipientStatus
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing, open_engine
from scriptmail.store.schema import bodies, hostings, messages, recipients

RECIPIENTS_PER_MESSAGE = 10
BODY = b"From: shop@backlog.test\r\nTo: r@far.test\r\nSubject: waiting\r\n\r\n" + b"x" * 900 + b"\r\n"
BATCH_MESSAGES = 2_000


def fill(database_url: str, total: int, log=lambda text: None) -> float:
    """Write `total` recipients (half waiting, half held); returns the seconds it took."""
    started = time.monotonic()
    engine = open_engine(database_url, pool_size=1)
    now = time.time()
    try:
        with for_writing(engine).begin() as connection:
            waiting = hosting_store.add_hosting(connection, "backlog-waiting.test", "ops@backlog.test", plan="unlimited")
            held = hosting_store.add_hosting(connection, "backlog-held.test", "ops@backlog.test", plan="unlimited")
            connection.execute(update(hostings).where(hostings.c.id == held.id).values(state=HostingState.BLOCKED.value))
        written = 0
        for hosting_id, status in ((waiting.id, RecipientStatus.DEFERRED), (held.id, RecipientStatus.HELD)):
            share = total // 2 if status is RecipientStatus.DEFERRED else total - total // 2
            done = 0
            while done < share:
                count = min(share - done, BATCH_MESSAGES * RECIPIENTS_PER_MESSAGE)
                _batch(engine, hosting_id, status, count, now)
                done += count
                written += count
                if written % 100_000 < count:
                    log(f"backlog: {written:,} of {total:,} recipients written")
    finally:
        engine.dispose()
    return time.monotonic() - started


def _batch(engine, hosting_id: int, status: RecipientStatus, count: int, now: float) -> None:
    message_count = -(-count // RECIPIENTS_PER_MESSAGE)
    with for_writing(engine).begin() as connection:
        ids = connection.execute(
            insert(messages).returning(messages.c.id),
            [
                {"hosting_id": hosting_id, "received_at": now - 3600, "envelope_from": "shop@backlog.test", "subject": "waiting",
                 "size": len(BODY), "origin": Origin.SMTP.value, "client": "127.0.0.1"}
                for _ in range(message_count)
            ],
        ).scalars().all()  # fmt: skip
        connection.execute(insert(bodies), [{"message_id": message_id, "data": BODY} for message_id in ids])
        waiting = status is RecipientStatus.DEFERRED
        rows = []
        for index in range(count):
            rows.append({
                "message_id": ids[index // RECIPIENTS_PER_MESSAGE], "hosting_id": hosting_id,
                "address": f"r{index}@far{index % 500}.test", "domain": f"far{index % 500}.test", "status": status.value,
                "queued_at": now - 3600, "next_attempt_at": now + 86400 if waiting else now - 3600,
                "attempts": 1 if waiting else 0, "last_code": 451 if waiting else None,
                "last_text": "4.4.1 the far side is down" if waiting else "", "held_at": None if waiting else now - 3600,
                "updated_at": now - 3600,
            })  # fmt: skip
        connection.execute(insert(recipients), rows)
