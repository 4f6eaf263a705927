"""The audit log: every change made through the admin API or the CLI, with who made it (a token's
id, never its secret), when, what, and the object before and after, as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select

from scriptmail.store.schema import audit_log


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an API token (its id and owner) or a command on the server."""

    label: str
    token_id: int | None = None

    @classmethod
    def token(cls, token_id: int, email: str) -> Actor:
        return cls(f"token {token_id} ({email})", token_id)

    @classmethod
    def operator(cls, email: str) -> Actor:
        """An operator signed in to the operator area (no token: a browser session)."""
        return cls(f"operator {email}")

    @classmethod
    def command(cls) -> Actor:
        """A command on the server, with the uid that ran it (the CLI trusts the machine's accounts)."""
        return cls(f"cli (uid {os.getuid()})")


CLI = Actor("cli")  # a command whose uid is not known (tests, tools)


def webhook(endpoint: Any) -> dict[str, Any]:
    """What the log keeps of a webhook endpoint: never its secret."""
    return {"id": endpoint.id, "hosting": endpoint.hosting, "url": endpoint.url, "events": list(endpoint.events),
            "description": endpoint.description}  # fmt: skip


def record(
    connection: Connection, actor: Actor, action: str, target: str, now: float, before: Any = None, after: Any = None
) -> None:
    """One entry, in the same transaction as the change it describes."""
    connection.execute(
        insert(audit_log).values(
            at=now, token_id=actor.token_id, actor=actor.label[:400], action=action, target=target[:400],
            before=None if before is None else json.dumps(before, default=str, sort_keys=True),
            after=None if after is None else json.dumps(after, default=str, sort_keys=True),
        )
    )  # fmt: skip


def entries(
    connection: Connection, *, target: str = "", action: str = "", token_id: int | None = None, offset: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """One page of entries, newest first, and how many match."""
    conditions = []
    if target:
        conditions.append(audit_log.c.target == target)
    if action:
        conditions.append(audit_log.c.action == action)
    if token_id is not None:
        conditions.append(audit_log.c.token_id == token_id)
    total = connection.execute(select(func.count()).select_from(audit_log).where(*conditions)).scalar_one()
    rows = connection.execute(
        select(audit_log).where(*conditions).order_by(audit_log.c.id.desc()).offset(offset).limit(limit)
    )
    found = []
    for row in rows:
        entry = dict(row._mapping)
        entry["before"] = None if row.before is None else json.loads(row.before)
        entry["after"] = None if row.after is None else json.loads(row.after)
        found.append(entry)
    return found, total
