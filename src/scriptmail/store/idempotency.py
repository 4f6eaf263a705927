"""Idempotency keys (the IETF HTTP API draft's `Idempotency-Key`): the first answer to a key is
kept per token, so a retried POST gets it again instead of creating a second object."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from scriptmail.store.schema import idempotency_keys

KEEP_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class Stored:
    request_hash: str
    status: int
    body: Any


def request_hash(body: Any) -> str:
    """The fingerprint of a request body: the same JSON value, however spaced, is the same request."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def find(connection: Connection, token_id: int, key: str, now: float) -> Stored | None:
    row = connection.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.token_id == token_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at >= now - KEEP_SECONDS,
        )
    ).first()
    return Stored(row.request_hash, row.status, json.loads(row.body)) if row else None


def remember(connection: Connection, token_id: int, key: str, fingerprint: str, status: int, body: Any, now: float) -> None:
    """Keep an answer, in the transaction that made it (an expired entry for the key is replaced)."""
    connection.execute(
        delete(idempotency_keys).where(idempotency_keys.c.token_id == token_id, idempotency_keys.c.key == key)
    )
    connection.execute(
        insert(idempotency_keys).values(
            token_id=token_id, key=key, request_hash=fingerprint, status=status, body=json.dumps(body, default=str), created_at=now
        )
    )


def prune(connection: Connection, now: float) -> int:
    return connection.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < now - KEEP_SECONDS)).rowcount
