"""The suppression lists in the store: what a claim checks (one query per claimed batch), what
delivery results add (in the same transaction), and what the customer and the operator change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, or_, select, update

from scriptmail.international.addresses import search_forms
from scriptmail.model import AttemptResult, RecipientStatus
from scriptmail.store.engine import upsert
from scriptmail.store.schema import bodies, recipients, suppressions
from scriptmail.store.webhooks import SuppressionAdded, suppression_events
from scriptmail.suppression.rules import (
    DAY,
    REQUEUE_WINDOW,
    Entry,
    EntryError,
    Kind,
    Reason,
    entry_of,
    lookup_form,
    matching_form,
    pattern_refusal,
    reason_for,
)

PLATFORM = 0  # the scope of the operator's list
PAGE = 50
_BOUNCED = RecipientStatus.BOUNCED.value
_SUPPRESSED = RecipientStatus.SUPPRESSED.value


def _storable(text: str) -> bool:
    """No entry holds a control character, and PostgreSQL refuses NUL in a query: such input
    matches nothing, without asking the store."""
    return not any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _live(now: float):
    return or_(suppressions.c.expires_at.is_(None), suppressions.c.expires_at > now)


def entries_for(connection: Connection, pairs: Iterable[tuple[int, str]], now: float) -> list[Entry]:
    """Every live entry that could match one of these (hosting id, address) pairs: one query."""
    pairs = list(pairs)
    if not pairs:
        return []
    forms = {matching_form(address) for _, address in pairs}  # domains as A-labels, as entries keep them
    values = forms | {address.rpartition("@")[2] for address in forms}
    scopes = {hosting_id for hosting_id, _ in pairs} | {PLATFORM}
    rows = connection.execute(
        select(
            suppressions.c.scope, suppressions.c.value, suppressions.c.kind, suppressions.c.reason,
            suppressions.c.code, suppressions.c.reply, suppressions.c.notified,
        ).where(
            _live(now),
            or_(
                and_(suppressions.c.scope.in_(scopes), suppressions.c.value.in_(values)),
                and_(suppressions.c.kind == Kind.PATTERN.value, suppressions.c.scope == PLATFORM),
            ),
        )
    ).all()  # fmt: skip
    return [Entry(r.scope, r.value, Kind(r.kind), r.reason, r.code, r.reply, bool(r.notified)) for r in rows]


def learn(connection: Connection, results: Sequence[AttemptResult], now: float, days: int) -> int:
    """Put on their hosting's list the addresses these bounces say to stop mailing. Returns how many.

    One query (the addresses and their other permanent failures of the last day) and one upsert,
    and only when the batch has bounces."""
    bounced = {r.recipient_id: r for r in results if r.status is RecipientStatus.BOUNCED and r.hosting_id}
    if not bounced:
        return 0
    other = recipients.alias("other")
    earlier = (
        select(func.count())
        .where(
            other.c.hosting_id == recipients.c.hosting_id,
            other.c.status == _BOUNCED,
            other.c.updated_at > now - DAY,
            other.c.address == recipients.c.address,
            other.c.id != recipients.c.id,
        )
        .scalar_subquery()
    )
    rows = connection.execute(
        select(recipients.c.id, recipients.c.hosting_id, recipients.c.address, earlier.label("earlier")).where(
            recipients.c.id.in_(list(bounced))
        )
    ).all()
    entries: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        result = bounced[row.id]
        reason = reason_for(result.code, result.text, row.earlier)
        if reason is None:
            continue
        entries[(row.hosting_id, row.address.lower())] = {
            "scope": row.hosting_id, "value": row.address.lower(), "kind": Kind.ADDRESS.value, "reason": reason.value,
            "code": result.code, "reply": result.text[:2000], "created_at": now, "expires_at": now + days * DAY,
            "notified": 1,  # the bounce that put it there is notified itself
        }  # fmt: skip
    if not entries:
        return 0
    statement = upsert(connection, suppressions)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[suppressions.c.scope, suppressions.c.value],
            set_={name: statement.excluded[name] for name in ("kind", "reason", "code", "reply", "created_at", "expires_at", "notified")},
        ),
        [entries[key] for key in sorted(entries)],
    )
    suppression_events(connection, [_added(entries[key], None) for key in sorted(entries)], now)
    return len(entries)


def mark_notified(connection: Connection, entries: Iterable[Entry]) -> None:
    keys = {(entry.scope, entry.value) for entry in entries if not entry.notified}
    for scope in {scope for scope, _ in keys}:
        connection.execute(
            update(suppressions)
            .where(suppressions.c.scope == scope, suppressions.c.value.in_([v for s, v in keys if s == scope]))
            .values(notified=1)
        )


@dataclass(frozen=True, slots=True)
class Added:
    kind: Kind
    value: str
    created: bool  # False: it was there already (refreshed)


def add(
    connection: Connection, scope: int, value: str, now: float, days: int | None, reason: str = Reason.MANUAL.value, reply: str = ""
) -> Added:
    """Add or refresh one entry; `days=None` keeps it until removed. EntryError for a bad value."""
    kind, normal = entry_of(value, allow_patterns=scope == PLATFORM)
    return _put(connection, scope, [(kind, normal, reason, reply)], now, days)[0]


def _put(
    connection: Connection, scope: int, items: list[tuple[Kind, str, str, str]], now: float, days: int | None
) -> list[Added]:
    existing = set(
        connection.execute(
            select(suppressions.c.value).where(suppressions.c.scope == scope, suppressions.c.value.in_([v for _, v, _, _ in items]))
        ).scalars()
    )
    rows = {
        value: {
            "scope": scope, "value": value, "kind": kind.value, "reason": reason[:32] or Reason.MANUAL.value,
            "code": None, "reply": reply[:2000], "created_at": now, "expires_at": None if days is None else now + days * DAY,
            "notified": 0,
        }
        for kind, value, reason, reply in items
    }  # fmt: skip
    statement = upsert(connection, suppressions)
    for start in range(0, len(rows), 1000):
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[suppressions.c.scope, suppressions.c.value],
                set_={name: statement.excluded[name] for name in ("kind", "reason", "reply", "created_at", "expires_at")},
            ),
            [rows[value] for value in sorted(rows)[start : start + 1000]],
        )
    suppression_events(connection, [_added(rows[value], value not in existing) for value in sorted(rows)], now)
    return [Added(kind, value, value not in existing) for kind, value, _, _ in items]


def _added(row: dict[str, Any], created: bool | None) -> SuppressionAdded:
    return SuppressionAdded(
        row["scope"], row["value"], row["kind"], row["reason"], row["code"], row["reply"], row["expires_at"], created
    )


def add_many(connection: Connection, scope: int, items: list[tuple[str, str]], now: float, days: int | None) -> list[Added]:
    """Add (value, reason) pairs, all or none: the first bad value raises EntryError naming it."""
    checked = []
    for value, reason in items:
        kind, normal = entry_of(value, allow_patterns=scope == PLATFORM)
        checked.append((kind, normal, reason or Reason.MANUAL.value, ""))
    return _put(connection, scope, checked, now, days) if checked else []


@dataclass(frozen=True, slots=True)
class Removed:
    found: bool
    requeued: int


def remove(connection: Connection, scope: int, value: str, now: float, requeue: bool = False) -> Removed:
    """Remove one entry; with `requeue`, mail to it suppressed in the last 72 h goes back to the queue
    (only where its message is still stored)."""
    normal = lookup_form(value)
    if not _storable(normal):
        return Removed(False, 0)
    found = connection.execute(
        delete(suppressions).where(suppressions.c.scope == scope, suppressions.c.value == normal).returning(suppressions.c.kind)
    ).scalar()
    if found is None or not requeue:
        return Removed(found is not None, 0)
    target = recipients.c.domain == normal if found == Kind.DOMAIN.value else func.lower(recipients.c.address) == normal
    conditions = [
        recipients.c.status == _SUPPRESSED,
        recipients.c.next_attempt_at > now,  # a suppressed row's next_attempt_at is the end of its window
        recipients.c.updated_at >= now - REQUEUE_WINDOW,
        target,
        exists().where(bodies.c.message_id == recipients.c.message_id),
    ]
    if scope != PLATFORM:
        conditions.append(recipients.c.hosting_id == scope)
    if found == Kind.PATTERN.value:
        return Removed(True, 0)  # a pattern's mail is found again by no single address: not re-queued
    requeued = connection.execute(
        update(recipients)
        .where(*conditions)
        .values(
            status=RecipientStatus.QUEUED.value, next_attempt_at=now, last_code=None, updated_at=now,
            last_text="re-queued: its address was removed from the suppression list",
        )  # fmt: skip
    ).rowcount
    return Removed(True, requeued)


def entries(
    connection: Connection, scope: int, now: float, search: str = "", after: str | None = None, limit: int = PAGE
) -> list[dict[str, Any]]:
    """A page of a list, by value; `search` is a plain substring (no wildcards of its own)."""
    if not _storable(search) or (after is not None and not _storable(after)):
        return []
    query = select(suppressions).where(suppressions.c.scope == scope, _live(now)).order_by(suppressions.c.value).limit(limit)
    if search:
        # A Unicode domain label is also looked for as its A-label: "bücher" finds xn--bcher-kva.de.
        likes = []
        for form in search_forms(search.lower()):
            escaped = form.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            likes.append(suppressions.c.value.like(f"%{escaped}%", escape="\\"))
        query = query.where(or_(*likes))
    if after is not None:
        query = query.where(suppressions.c.value > after.lower())
    return [
        {
            "value": row.value, "kind": row.kind, "reason": row.reason, "code": row.code, "reply": row.reply,
            "created_at": row.created_at, "expires_at": row.expires_at,
            "refused": pattern_refusal(row.value) if row.kind == Kind.PATTERN.value else "",
        }
        for row in connection.execute(query)
    ]  # fmt: skip


def refused_patterns(connection: Connection, now: float) -> list[tuple[str, str]]:
    """The platform's live patterns the width guard refuses, with the reason: they are not applied."""
    rows = connection.execute(
        select(suppressions.c.value).where(
            suppressions.c.scope == PLATFORM, suppressions.c.kind == Kind.PATTERN.value, _live(now)
        )
    ).scalars()
    return [(value, why) for value in rows if (why := pattern_refusal(value))]


def count(connection: Connection, scope: int, now: float) -> int:
    return int(connection.execute(select(func.count()).where(suppressions.c.scope == scope, _live(now))).scalar_one())


def prune(connection: Connection, now: float) -> int:
    """Delete entries that have expired."""
    return connection.execute(delete(suppressions).where(suppressions.c.expires_at <= now)).rowcount


__all__ = ["EntryError", "PLATFORM", "add", "add_many", "entries", "entries_for", "learn", "remove"]
