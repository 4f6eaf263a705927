"""Webhook endpoints, the outbox of events, and its delivery (claims, outcomes, the delivery log).

Events are written by the transaction that causes them (`emit`), one row per subscribed endpoint,
in one statement per commit. Who subscribes to what is cached per process for a few seconds, so
the delivery results' hot path asks the store nothing when no endpoint wants its events. The
insert re-checks each endpoint in the same statement, so a stale cache never writes for an
endpoint that was removed or disabled meanwhile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, literal, select, update

from scriptmail.store.hostings import HostingError
from scriptmail.store.schema import hostings, messages, recipients, webhook_attempts, webhook_endpoints, webhook_messages
from scriptmail.webhooks import signing
from scriptmail.webhooks.addresses import parse_url
from scriptmail.webhooks.events import EventType, body, iso, parse_events
from scriptmail.webhooks.retry import next_attempt, success

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
CACHE_SECONDS = 5.0
EXCERPT = 500  # characters of an answer's body kept in the delivery log
MAX_ENDPOINTS_PER_HOSTING = 10  # defaults of webhooks.max_hosting_endpoints and max_platform_endpoints
MAX_PLATFORM_ENDPOINTS = 20


class EndpointError(ValueError):
    """A webhook endpoint that cannot be made or found; the message says why."""


class EndpointCapReached(EndpointError):
    """The hosting, or the platform, has as many endpoints as it may: a conflict, not bad input."""


@dataclass(frozen=True, slots=True)
class Event:
    hosting_id: int | None  # None: a platform event (only platform-wide endpoints get it)
    type: EventType
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    hosting: str | None  # None: platform-wide
    url: str
    events: tuple[str, ...]
    description: str
    created_at: float
    created_by: str
    disabled_at: float | None
    disabled_reason: str
    failing_since: float | None


# --- subscriptions (cached) -------------------------------------------------------------------


@dataclass
class _Subscriptions:
    loaded_at: float
    platform: dict[str, list[int]] = field(default_factory=dict)  # event type -> platform-wide endpoints
    hosting: dict[tuple[int, str], list[int]] = field(default_factory=dict)  # (hosting, type) -> endpoints

    def endpoints(self, hosting_id: int | None, event_type: str) -> list[int]:
        found = list(self.platform.get(event_type, ()))
        if hosting_id is not None:
            found += self.hosting.get((hosting_id, event_type), ())
        return found

    @property
    def empty(self) -> bool:
        return not self.platform and not self.hosting


_CACHE: dict[str, _Subscriptions] = {}


def invalidate() -> None:
    """Forget the cached subscriptions (after a change made by this process)."""
    _CACHE.clear()


def subscriptions(connection: Connection) -> _Subscriptions:
    """Who subscribes to what, reread at most every CACHE_SECONDS."""
    key = str(connection.engine.url)
    now = time.monotonic()
    cached = _CACHE.get(key)
    if cached is not None and now - cached.loaded_at < CACHE_SECONDS:
        return cached
    loaded = _Subscriptions(now)
    rows = connection.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.hosting_id, webhook_endpoints.c.events).where(
            webhook_endpoints.c.disabled_at.is_(None)
        )
    )
    for row in rows:
        for event_type in row.events.split(","):
            if row.hosting_id is None:
                loaded.platform.setdefault(event_type, []).append(row.id)
            else:
                loaded.hosting.setdefault((row.hosting_id, event_type), []).append(row.id)
    _CACHE[key] = loaded
    return loaded


def wants(connection: Connection, hosting_id: int | None, event_type: EventType) -> bool:
    """Whether any endpoint would get this event (no store access while the cache is fresh)."""
    return bool(subscriptions(connection).endpoints(hosting_id, event_type.value))


def emit(connection: Connection, events: Iterable[Event], now: float) -> int:
    """Write each event for every endpoint subscribed to it, in the caller's transaction: one
    statement, nothing at all when nobody subscribes. Returns the rows written."""
    cache = subscriptions(connection)
    if cache.empty:
        return 0
    rows = []
    stamp = iso(now)
    for event in events:
        targets = cache.endpoints(event.hosting_id, event.type.value)
        if targets:
            payload = body(event.type, now, event.data, stamp)
            rows += [{"eid": endpoint_id, "hid": event.hosting_id, "etype": event.type.value, "payload": payload} for endpoint_id in targets]
    if not rows:
        return 0
    _insert_messages(connection, rows, now)
    return len(rows)


def _insert_messages(connection: Connection, rows: list[dict], now: float, check_enabled: bool = True) -> None:
    # INSERT ... SELECT from the endpoint: an endpoint removed or disabled since the cache was
    # filled gets nothing, and the caller's transaction never fails on it.
    conditions = [webhook_endpoints.c.id == bindparam("eid")]
    if check_enabled:
        conditions.append(webhook_endpoints.c.disabled_at.is_(None))
    chosen = select(
        webhook_endpoints.c.id,
        bindparam("hid", type_=webhook_messages.c.hosting_id.type),
        bindparam("etype", type_=webhook_messages.c.event_type.type),
        literal(now, webhook_messages.c.created_at.type),
        bindparam("payload", type_=webhook_messages.c.payload.type),
        literal(PENDING, webhook_messages.c.status.type),
        literal(0, webhook_messages.c.attempts.type),
        literal(now, webhook_messages.c.next_attempt_at.type),
    ).where(*conditions)
    columns = ["endpoint_id", "hosting_id", "event_type", "created_at", "payload", "status", "attempts", "next_attempt_at"]
    connection.execute(insert(webhook_messages).from_select(columns, chosen), rows)


# --- endpoints ------------------------------------------------------------------------------


def create_endpoint(
    connection: Connection, hosting: str | None, url: str, events: str | list[str], now: float,
    description: str = "", created_by: str = "", cap: int | None = None,
) -> tuple[Endpoint, str]:  # fmt: skip
    """A new endpoint for one hosting (or platform-wide); returns it and its secret, shown once.
    `cap` is how many endpoints the hosting (or the platform) may have (`webhooks.max_hosting_endpoints`,
    `webhooks.max_platform_endpoints`); over it, EndpointCapReached."""
    parse_url(url)  # raises UrlRefused (a ValueError) for a malformed URL; addresses are checked when sending
    types = parse_events(events)
    if len(description) > 200:
        raise EndpointError("a description has at most 200 characters")
    hosting_id = None
    if hosting is not None:
        hosting_id = connection.execute(select(hostings.c.id).where(hostings.c.name == hosting)).scalar()
        if hosting_id is None:
            raise HostingError(f"no hosting named {hosting!r}")
    owned = webhook_endpoints.c.hosting_id.is_(None) if hosting_id is None else webhook_endpoints.c.hosting_id == hosting_id
    count = connection.execute(select(func.count()).select_from(webhook_endpoints).where(owned)).scalar_one()
    limit = cap if cap is not None else MAX_PLATFORM_ENDPOINTS if hosting_id is None else MAX_ENDPOINTS_PER_HOSTING
    if count >= limit:
        whose = "the platform has" if hosting_id is None else "a hosting has"
        raise EndpointCapReached(f"{whose} at most {limit} webhook endpoints: remove one first")
    secret = signing.new_secret()
    endpoint_id = connection.execute(
        insert(webhook_endpoints)
        .values(
            hosting_id=hosting_id, url=url, events=",".join(types), description=description, secret=secret,
            created_at=now, created_by=created_by[:320],
        )
        .returning(webhook_endpoints.c.id)
    ).scalar_one()  # fmt: skip
    invalidate()
    return get_endpoint(connection, endpoint_id), secret


def _endpoint_query():
    return select(
        webhook_endpoints.c.id, hostings.c.name.label("hosting"), webhook_endpoints.c.url, webhook_endpoints.c.events,
        webhook_endpoints.c.description, webhook_endpoints.c.created_at, webhook_endpoints.c.created_by,
        webhook_endpoints.c.disabled_at, webhook_endpoints.c.disabled_reason, webhook_endpoints.c.failing_since,
    ).outerjoin(hostings, hostings.c.id == webhook_endpoints.c.hosting_id)  # fmt: skip


def _endpoint(row) -> Endpoint:
    values = dict(row._mapping)
    values["events"] = tuple(values["events"].split(","))
    return Endpoint(**values)


def get_endpoint(connection: Connection, endpoint_id: int, hosting: str | None | type[Ellipsis] = ...) -> Endpoint:
    """One endpoint; with `hosting`, only if it belongs there (None: platform-wide). Raises EndpointError."""
    row = connection.execute(_endpoint_query().where(webhook_endpoints.c.id == endpoint_id)).first()
    if row is None or (hosting is not ... and row.hosting != hosting):
        raise EndpointError(f"no webhook endpoint {endpoint_id}")
    return _endpoint(row)


def list_endpoints(connection: Connection, hosting: str | None | type[Ellipsis] = ...) -> list[Endpoint]:
    """Every endpoint, or those of one hosting (None: the platform-wide ones)."""
    query = _endpoint_query().order_by(webhook_endpoints.c.id)
    if hosting is None:
        query = query.where(webhook_endpoints.c.hosting_id.is_(None))
    elif hosting is not ...:
        query = query.where(hostings.c.name == hosting)
    return [_endpoint(row) for row in connection.execute(query)]


def remove_endpoint(connection: Connection, endpoint_id: int, hosting: str | None | type[Ellipsis] = ...) -> None:
    """Delete an endpoint with its pending messages and its delivery log."""
    get_endpoint(connection, endpoint_id, hosting)
    connection.execute(delete(webhook_attempts).where(webhook_attempts.c.endpoint_id == endpoint_id))
    connection.execute(delete(webhook_messages).where(webhook_messages.c.endpoint_id == endpoint_id))
    connection.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))
    invalidate()


def rotate_secret(connection: Connection, endpoint_id: int, now: float, grace: float, hosting: str | None | type[Ellipsis] = ...) -> str:
    """A new secret, shown once; the old one also signs for `grace` seconds so receivers can switch."""
    get_endpoint(connection, endpoint_id, hosting)
    old = connection.execute(select(webhook_endpoints.c.secret).where(webhook_endpoints.c.id == endpoint_id)).scalar_one()
    secret = signing.new_secret()
    connection.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(secret=secret, previous_secret=old if grace > 0 else None, previous_until=now + grace if grace > 0 else None)
    )
    return secret


def enable_endpoint(connection: Connection, endpoint_id: int, hosting: str | None | type[Ellipsis] = ...) -> None:
    """Send to a disabled endpoint again (its owner fixed it); its failures count from zero."""
    get_endpoint(connection, endpoint_id, hosting)
    connection.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(disabled_at=None, disabled_reason="", failing_since=None)
    )
    invalidate()


def queue_test(connection: Connection, endpoint_id: int, now: float, hosting: str | None | type[Ellipsis] = ...) -> int:
    """Queue a `webhook.test` event for this endpoint alone (disabled or not); its message id."""
    endpoint = get_endpoint(connection, endpoint_id, hosting)
    data = {"endpoint": endpoint.id, "hosting": endpoint.hosting, "message": "a test event sent on request"}
    _insert_messages(
        connection, [{"eid": endpoint_id, "hid": None, "etype": EventType.TEST.value, "payload": body(EventType.TEST, now, data)}],
        now, check_enabled=False,
    )  # fmt: skip
    return connection.execute(
        select(func.max(webhook_messages.c.id)).where(webhook_messages.c.endpoint_id == endpoint_id)
    ).scalar_one()


def delivery_log(connection: Connection, endpoint_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The endpoint's latest attempts, newest first: when, which event, status, answer time, excerpt."""
    query = (
        select(
            webhook_attempts.c.at, webhook_attempts.c.webhook_message_id.label("message"), webhook_messages.c.event_type,
            webhook_attempts.c.status_code, webhook_attempts.c.duration, webhook_attempts.c.error, webhook_attempts.c.excerpt,
        )
        .join(webhook_messages, webhook_messages.c.id == webhook_attempts.c.webhook_message_id)
        .where(webhook_attempts.c.endpoint_id == endpoint_id)
        .order_by(webhook_attempts.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [dict(row._mapping) for row in connection.execute(query)]


def messages_of(connection: Connection, endpoint_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The endpoint's latest messages with their state (pending, delivered, failed)."""
    query = (
        select(webhook_messages.c.id, webhook_messages.c.event_type, webhook_messages.c.created_at, webhook_messages.c.status,
               webhook_messages.c.attempts, webhook_messages.c.next_attempt_at, webhook_messages.c.delivered_at)
        .where(webhook_messages.c.endpoint_id == endpoint_id)
        .order_by(webhook_messages.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [dict(row._mapping) for row in connection.execute(query)]


# --- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueMessage:
    id: int
    endpoint_id: int
    url: str
    secrets: list[str]
    payload: str
    attempts: int
    created_at: float
    event_type: str


@dataclass(frozen=True, slots=True)
class Outcome:
    message_id: int
    endpoint_id: int
    started_at: float
    status_code: int | None
    duration: float
    error: str = ""
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class Disabled:
    endpoint_id: int
    hosting_id: int | None
    url: str
    reason: str


def claim_due(connection: Connection, owner: str, limit: int, lease_seconds: float, now: float) -> list[DueMessage]:
    """Lease up to `limit` due messages of enabled endpoints to `owner` (SKIP LOCKED on PostgreSQL):
    one node at a time sends a message, and a dead node's lease comes due again by itself."""
    due = (
        select(webhook_messages.c.id)
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_messages.c.endpoint_id)
        .where(
            webhook_messages.c.status == PENDING,
            webhook_messages.c.next_attempt_at <= now,
            (webhook_endpoints.c.disabled_at.is_(None)) | (webhook_messages.c.event_type == EventType.TEST.value),
        )
        .order_by(webhook_messages.c.next_attempt_at)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(of=webhook_messages, skip_locked=True)
    ids = list(
        connection.execute(
            update(webhook_messages)
            .where(webhook_messages.c.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease_seconds, next_attempt_at=now + lease_seconds)
            .returning(webhook_messages.c.id)
        ).scalars()
    )
    if not ids:
        return []
    rows = connection.execute(
        select(
            webhook_messages.c.id, webhook_messages.c.endpoint_id, webhook_messages.c.payload, webhook_messages.c.attempts,
            webhook_messages.c.created_at, webhook_messages.c.event_type, webhook_endpoints.c.url, webhook_endpoints.c.secret,
            webhook_endpoints.c.previous_secret, webhook_endpoints.c.previous_until,
        )
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_messages.c.endpoint_id)
        .where(webhook_messages.c.id.in_(ids))
        .order_by(webhook_messages.c.id)
    ).all()  # fmt: skip
    return [
        DueMessage(
            id=row.id, endpoint_id=row.endpoint_id, url=row.url, payload=row.payload, attempts=row.attempts,
            created_at=row.created_at, event_type=row.event_type,
            secrets=[row.secret] + ([row.previous_secret] if row.previous_secret and (row.previous_until or 0) > now else []),
        )
        for row in rows
    ]  # fmt: skip


def release_leases(connection: Connection, owner: str, now: float) -> int:
    """At start, what this node's previous run had leased is due again at once (no attempt counted)."""
    return connection.execute(
        update(webhook_messages)
        .where(webhook_messages.c.status == PENDING, webhook_messages.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, next_attempt_at=now)
    ).rowcount


def record_outcomes(
    connection: Connection, owner: str, outcomes: Sequence[Outcome], now: float,
    delays: tuple[int, ...], window: float, disable_after: float,
) -> list[Disabled]:  # fmt: skip
    """Log each attempt, finish or reschedule its message (only while still ours), and disable the
    endpoints that have failed for `disable_after` without a success; returns those."""
    if not outcomes:
        return []
    connection.execute(
        insert(webhook_attempts),
        [
            {
                "endpoint_id": outcome.endpoint_id, "webhook_message_id": outcome.message_id, "at": outcome.started_at,
                "node": owner[:200], "status_code": outcome.status_code, "duration": outcome.duration,
                "error": outcome.error[:2000], "excerpt": outcome.excerpt[:EXCERPT],
            }
            for outcome in outcomes
        ],
    )  # fmt: skip
    known = {
        row.id: row
        for row in connection.execute(
            select(webhook_messages.c.id, webhook_messages.c.created_at, webhook_messages.c.attempts).where(
                webhook_messages.c.id.in_([outcome.message_id for outcome in outcomes])
            )
        )
    }
    succeeded: set[int] = set()
    failed: dict[int, float] = {}
    for outcome in sorted(outcomes, key=lambda outcome: outcome.message_id):
        row = known.get(outcome.message_id)
        if row is None:
            continue  # the endpoint was removed meanwhile
        ours = and_(webhook_messages.c.id == outcome.message_id, webhook_messages.c.lease_owner == owner,
                    webhook_messages.c.status == PENDING)  # fmt: skip
        done = row.attempts + 1
        if success(outcome.status_code):
            values: dict[str, Any] = {"status": DELIVERED, "delivered_at": now, "next_attempt_at": now}
            succeeded.add(outcome.endpoint_id)
        else:
            later = next_attempt(done, row.created_at, now, delays, window)
            values = {"status": PENDING, "next_attempt_at": later} if later is not None else {"status": FAILED, "next_attempt_at": now}
            failed.setdefault(outcome.endpoint_id, outcome.started_at)
        connection.execute(
            update(webhook_messages).where(ours).values(attempts=done, lease_owner=None, lease_until=None, **values)
        )
    if succeeded:
        connection.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id.in_(succeeded)).values(failing_since=None)
        )
    still_failing = {endpoint_id: at for endpoint_id, at in failed.items() if endpoint_id not in succeeded}
    for endpoint_id, at in still_failing.items():
        connection.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.failing_since.is_(None))
            .values(failing_since=at)
        )
    disabled = []
    if still_failing:
        rows = connection.execute(
            update(webhook_endpoints)
            .where(
                webhook_endpoints.c.id.in_(list(still_failing)),
                webhook_endpoints.c.disabled_at.is_(None),
                webhook_endpoints.c.failing_since <= now - disable_after,
            )
            .values(disabled_at=now, disabled_reason=f"every attempt failed for {disable_after / 3600:g} hours")
            .returning(webhook_endpoints.c.id, webhook_endpoints.c.hosting_id, webhook_endpoints.c.url, webhook_endpoints.c.disabled_reason)
        ).all()
        disabled = [Disabled(row.id, row.hosting_id, row.url, row.disabled_reason) for row in rows]
        if disabled:
            invalidate()
    return disabled


def prune(connection: Connection, before: float, limit: int = 5000) -> int:
    """Finished messages (and their attempts) older than `before`, a batch at a time."""
    old = select(webhook_messages.c.id).where(
        webhook_messages.c.status.in_((DELIVERED, FAILED)), webhook_messages.c.created_at < before
    ).limit(limit)
    ids = list(connection.execute(old).scalars())
    if not ids:
        return 0
    connection.execute(delete(webhook_attempts).where(webhook_attempts.c.webhook_message_id.in_(ids)))
    connection.execute(delete(webhook_messages).where(webhook_messages.c.id.in_(ids)))
    return len(ids)


def payload_of(connection: Connection, message_id: int) -> dict[str, Any]:
    """A message's event as JSON (tests and the CLI)."""
    return json.loads(connection.execute(select(webhook_messages.c.payload).where(webhook_messages.c.id == message_id)).scalar_one())


# --- events of recipients (bounced, expired, complained) ------------------------------------


def recipient_events(connection: Connection, items: Iterable[tuple[int, int, EventType, int | None, str]], now: float) -> int:
    """Events about recipients, given (recipient, hosting, type, code, text): only those some
    endpoint wants are looked up (one SELECT for all of them) and written (one INSERT)."""
    cache = subscriptions(connection)
    if cache.empty:
        return 0
    wanted = [item for item in items if cache.endpoints(item[1], item[2].value)]
    if not wanted:
        return 0
    details = {
        row.id: row
        for row in connection.execute(
            select(
                recipients.c.id, recipients.c.address, recipients.c.message_id, hostings.c.name, messages.c.subject,
                messages.c.envelope_from, messages.c.script, messages.c.received_at,
            )
            .join(messages, messages.c.id == recipients.c.message_id)
            .join(hostings, hostings.c.id == recipients.c.hosting_id)
            .where(recipients.c.id.in_([item[0] for item in wanted]))
        )
    }  # fmt: skip
    events = []
    for recipient_id, hosting_id, event_type, code, text in wanted:
        row = details.get(recipient_id)
        if row is not None:
            events.append(Event(hosting_id, event_type, {
                "hosting": row.name, "message": row.message_id, "recipient": recipient_id, "to": row.address,
                "from": row.envelope_from, "subject": row.subject, "script": row.script,
                "received_at": iso(row.received_at), "code": code, "text": text[:1000],
            }))  # fmt: skip
    return emit(connection, events, now)


def hosting_event(connection: Connection, hosting_id: int, event_type: EventType, data: dict[str, Any], now: float) -> int:
    """One event about a hosting, if anybody wants it (its name is looked up only then)."""
    if not wants(connection, hosting_id, event_type):
        return 0
    name = connection.execute(select(hostings.c.name).where(hostings.c.id == hosting_id)).scalar()
    return emit(connection, [Event(hosting_id, event_type, {"hosting": name, **data})], now)


# --- suppression entries ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SuppressionAdded:
    scope: int  # a hosting's id, or 0 for the platform's list
    value: str
    kind: str
    reason: str
    code: int | None
    reply: str
    expires_at: float | None
    created: bool | None  # False: an entry that was there was refreshed; None: not looked up


def suppression_events(connection: Connection, added: Sequence[SuppressionAdded], now: float) -> int:
    """`suppression.added` for entries just written in this transaction: a hosting's entry goes to
    its subscribers and the platform's, a platform entry to the platform's only. Nothing is read
    when nobody subscribes."""
    cache = subscriptions(connection)
    if cache.empty:
        return 0
    wanted = [entry for entry in added if cache.endpoints(entry.scope or None, EventType.SUPPRESSION_ADDED.value)]
    if not wanted:
        return 0
    scopes = sorted({entry.scope for entry in wanted if entry.scope})
    names = dict(connection.execute(select(hostings.c.id, hostings.c.name).where(hostings.c.id.in_(scopes))).all()) if scopes else {}
    events = [
        Event(entry.scope or None, EventType.SUPPRESSION_ADDED, {
            "hosting": names.get(entry.scope), "list": "hosting" if entry.scope else "platform", "value": entry.value,
            "kind": entry.kind, "reason": entry.reason, "code": entry.code, "reply": entry.reply[:1000],
            "expires_at": iso(entry.expires_at) if entry.expires_at is not None else None, "created": entry.created,
        })
        for entry in wanted
    ]  # fmt: skip
    return emit(connection, events, now)
