"""The evidence of automatic blocks in the store: sample messages for a detection, the false
positives an operator marks, and the counts the metrics show."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import Connection, select, update

from scriptmail.control.content import HIGH_SCORE
from scriptmail.control.evidence import BOUNCE_RATIO, SAMPLES, SPAM_CONTENT, UNKNOWN_USERS
from scriptmail.control.states import Actor
from scriptmail.model import RecipientStatus
from scriptmail.store.schema import hosting_events, hostings, messages, recipients


class EvidenceError(ValueError):
    """No such automatic block, or one already marked."""


def complete(connection: Connection, hosting_id: int, found: dict[str, Any], now: float) -> dict[str, Any]:
    """The detection's evidence with its window's times and up to 10 sample messages, newest first,
    read along the (hosting, status, updated_at) and (hosting, received_at) indexes."""
    window = dict(found.get("window", {}))
    if "seconds" in window:
        window |= {"start": now - window["seconds"], "end": now}
    columns = (recipients.c.message_id, messages.c.received_at, recipients.c.address, messages.c.subject, messages.c.script)
    query = select(*columns).join(messages, messages.c.id == recipients.c.message_id).where(recipients.c.hosting_id == hosting_id)
    if found.get("signal") in (BOUNCE_RATIO, UNKNOWN_USERS):
        query = query.where(recipients.c.status == RecipientStatus.BOUNCED.value).order_by(recipients.c.updated_at.desc())
    else:
        query = query.where(messages.c.received_at >= now - window.get("seconds", 3600)).order_by(messages.c.received_at.desc())
        if found.get("signal") == SPAM_CONTENT:
            query = query.where(messages.c.score >= HIGH_SCORE)
    samples = [
        {"id": row.message_id, "at": row.received_at, "to": row.address, "subject": row.subject[:200], "script": row.script[:300]}
        for row in connection.execute(query.limit(SAMPLES))
    ]
    return {**found, "window": window, "samples": samples}


def mark_false_positive(connection: Connection, hosting: str, event_id: int, by: str, note: str, now: float) -> None:
    """An operator says this automatic block was wrong; kept with it and counted in the metrics."""
    row = connection.execute(
        select(hosting_events.c.id, hosting_events.c.actor, hosting_events.c.false_positive_at)
        .join(hostings, hostings.c.id == hosting_events.c.hosting_id)
        .where(hosting_events.c.id == event_id, hostings.c.name == hosting)
    ).first()
    if row is None or row.actor != Actor.POLICY.value:
        raise EvidenceError(f"no automatic block {event_id} of {hosting}")
    if row.false_positive_at is not None:
        raise EvidenceError("this block is already marked as a false positive")
    connection.execute(
        update(hosting_events)
        .where(hosting_events.c.id == event_id)
        .values(false_positive_at=now, false_positive_by=by[:320], false_positive_note=note.strip()[:2000])
    )


def block_counts(connection: Connection) -> dict[str, Counter]:
    """Automatic blocks and those marked false positives, by signal (a short list: blocks are rare)."""
    blocks: Counter = Counter()
    wrong: Counter = Counter()
    rows = connection.execute(
        select(hosting_events.c.evidence, hosting_events.c.false_positive_at).where(hosting_events.c.actor == Actor.POLICY.value)
    )
    for row in rows:
        signal = json.loads(row.evidence).get("signal", "unknown") if row.evidence else "unknown"
        blocks[signal] += 1
        if row.false_positive_at is not None:
            wrong[signal] += 1
    return {"blocks": blocks, "false_positives": wrong}
