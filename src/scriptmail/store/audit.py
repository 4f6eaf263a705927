"""The audit log: every change made through the admin API, the CLI, the operator area, and the
customer's own API and area, with who made it (a token's id, never its secret), when, what, the
hosting it concerns, and the object before and after, as JSON."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select

from scriptmail.store.schema import audit_log

MAX_TEXT = 400  # the actor and target columns
MAX_DETAIL = 1000  # one string inside before/after: a hostile 2 MB value is not kept whole
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an API token (its id and owner), a signed-in user, or a command on the
    server. `by_operator` says whether it was the platform's side or the hosting's customer."""

    label: str
    token_id: int | None = None
    by_operator: bool = True

    @classmethod
    def token(cls, token_id: int, email: str, operator: bool = True) -> Actor:
        return cls(f"token {token_id} ({email})", token_id, operator)

    @classmethod
    def operator(cls, email: str) -> Actor:
        """An operator signed in to an area (no token: a browser session)."""
        return cls(f"operator {email}")

    @classmethod
    def user(cls, email: str) -> Actor:
        """A customer signed in to the customer area."""
        return cls(f"user {email}", None, False)

    @classmethod
    def session(cls, email: str, operator: bool) -> Actor:
        """Whoever is signed in to the customer area: an operator may act there too."""
        return cls.operator(email) if operator else cls.user(email)

    @classmethod
    def command(cls) -> Actor:
        """A command on the server, with the uid that ran it (the CLI trusts the machine's accounts)."""
        return cls(f"cli (uid {os.getuid()})")


CLI = Actor("cli")  # a command whose uid is not known (tests, tools)


def webhook(endpoint: Any) -> dict[str, Any]:
    """What the log keeps of a webhook endpoint: never its secret."""
    return {"id": endpoint.id, "hosting": endpoint.hosting, "url": endpoint.url, "events": list(endpoint.events),
            "description": endpoint.description}  # fmt: skip


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """A label fit for one line of a page or a terminal: control characters written out as \\xNN, cut at `limit`."""
    shown = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _bounded(value: Any) -> Any:
    """The details as kept: every string cut at MAX_DETAIL (JSON itself escapes control characters)."""
    if isinstance(value, str):
        return value if len(value) <= MAX_DETAIL else value[: MAX_DETAIL - 1] + "…"
    if isinstance(value, dict):
        return {str(key): _bounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_bounded(item) for item in value]
    return value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(_bounded(value), default=str, sort_keys=True)


def record(
    connection: Connection, actor: Actor, action: str, target: str, now: float, before: Any = None, after: Any = None,
    hosting: str | None = None,
) -> None:  # fmt: skip
    """One entry, in the same transaction as the change it describes."""
    connection.execute(
        insert(audit_log).values(
            at=now, token_id=actor.token_id, actor=clean(actor.label), action=action[:64], target=clean(target),
            before=_json(before), after=_json(after), hosting=hosting[:253] if hosting else None,
            by_operator=1 if actor.by_operator else 0,
        )
    )  # fmt: skip


def entries(
    connection: Connection, *, target: str = "", action: str = "", token_id: int | None = None, hosting: str = "",
    offset: int = 0, limit: int = 100,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """One page of entries, newest first, and how many match."""
    conditions = []
    if target:
        conditions.append(audit_log.c.target == target)
    if action:
        conditions.append(audit_log.c.action == action)
    if token_id is not None:
        conditions.append(audit_log.c.token_id == token_id)
    if hosting:
        conditions.append(audit_log.c.hosting == hosting)
    total = connection.execute(select(func.count()).select_from(audit_log).where(*conditions)).scalar_one()
    rows = connection.execute(
        select(audit_log).where(*conditions).order_by(audit_log.c.id.desc()).offset(offset).limit(limit)
    )
    found = []
    for row in rows:
        entry = dict(row._mapping)
        entry["by_operator"] = bool(row.by_operator)
        entry["before"] = None if row.before is None else json.loads(row.before)
        entry["after"] = None if row.after is None else json.loads(row.after)
        found.append(entry)
    return found, total
