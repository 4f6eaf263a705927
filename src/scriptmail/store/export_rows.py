"""The rows an export streams, read a page at a time along an index (keyset, never OFFSET), each
page in a short read of its own: a long download holds no transaction and no lock open."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from scriptmail.model import RecipientStatus
from scriptmail.store import log as store_log
from scriptmail.store.schema import messages, recipients, suppressions

PAGE = 1000
BOUNCE_STATUSES = (RecipientStatus.BOUNCED, RecipientStatus.EXPIRED)  # "Emails in error", as stats.bounces


def log_rows(
    engine: Engine, filters: store_log.Filters, statuses: Sequence[RecipientStatus] = (), page: int = PAGE
) -> Iterator[dict[str, Any]]:
    """One hosting's log as the filters select it within their time window (`since` and `until`,
    both set: exports/window.py), newest first; `statuses` narrows it further.

    The walk goes along the messages' (hosting_id, received_at) index, so it reads the mail of the
    window and nothing older, whatever the other filters match."""
    if filters.hosting_id is None:
        raise ValueError("an export reads one hosting")
    if filters.since is None or filters.until is None:
        raise ValueError("an export reads a time window")
    if statuses and filters.status is not None:
        if filters.status not in statuses:
            return
        statuses = ()
    last: tuple[float, int] | None = None
    while True:
        query = page_query(filters, statuses, page, last)
        with engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        yield from rows
        if len(rows) < page:
            return
        last = rows[-1]["received_at"], rows[-1]["id"]


def page_query(filters: store_log.Filters, statuses: Sequence[RecipientStatus], page: int, last: tuple[float, int] | None) -> Any:
    """One page of the walk: the rows received before `last` (reception time, recipient id)."""
    columns = (messages.c.message_id.label("message_id_header"), messages.c.cwd, messages.c.command, messages.c.client)
    query = (
        store_log.recent_query(filters, page)
        .add_columns(*columns)
        .where(messages.c.hosting_id == filters.hosting_id)
        .order_by(None)
        .order_by(messages.c.received_at.desc(), recipients.c.id.desc())
    )
    if statuses:
        query = query.where(recipients.c.status.in_([status.value for status in statuses]))
    if last is not None:
        received, recipient = last
        query = query.where(
            or_(messages.c.received_at < received, and_(messages.c.received_at == received, recipients.c.id < recipient))
        )
    return query


def suppression_rows(engine: Engine, scope: int, now: float, search: str = "", page: int = PAGE) -> Iterator[dict[str, Any]]:
    """A suppression list's live entries by value, `search` a plain substring."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in search):
        return  # no entry holds a control character (and PostgreSQL refuses NUL in a query)
    after: str | None = None
    while True:
        query = (
            select(suppressions)
            .where(suppressions.c.scope == scope)
            .where((suppressions.c.expires_at.is_(None)) | (suppressions.c.expires_at > now))
            .order_by(suppressions.c.value)
            .limit(page)
        )
        if search:
            escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(suppressions.c.value.like(f"%{escaped}%", escape="\\"))
        if after is not None:
            query = query.where(suppressions.c.value > after)
        with engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]["value"]
