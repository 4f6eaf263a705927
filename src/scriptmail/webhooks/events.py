"""The event types and the JSON body of each event (pure).

The body is fixed when the event is written, so every retry sends the same bytes under the same
webhook-id, and a receiver can drop the duplicates that at-least-once delivery allows.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime, timezone
from typing import Any


class EventType(enum.StrEnum):
    STATE_CHANGED = "hosting.state_changed"
    QUOTA_REACHED = "hosting.quota_reached"
    BOUNCED = "message.bounced"
    EXPIRED = "message.expired"
    COMPLAINED = "message.complained"
    REPORT_SENT = "report.sent"
    SUPPRESSION_ADDED = "suppression.added"
    TEST = "webhook.test"  # only ever sent by "send a test event"; nobody subscribes to it


SUBSCRIBABLE = tuple(event for event in EventType if event is not EventType.TEST)


class EventError(ValueError):
    """An event list that names no known event type."""


def parse_events(text: str | list[str]) -> tuple[EventType, ...]:
    """`a,b` or a list into event types, in a stable order; `*` is every event."""
    items = text.split(",") if isinstance(text, str) else text
    names = {item.strip() for item in items if item.strip()}
    if "*" in names:
        return SUBSCRIBABLE
    if not names:
        raise EventError("subscribe to at least one event (or * for all)")
    unknown = sorted(names - set(SUBSCRIBABLE))
    if unknown:
        raise EventError(f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(SUBSCRIBABLE)}")
    return tuple(event for event in SUBSCRIBABLE if event.value in names)


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def body(event_type: EventType | str, at: float, data: dict[str, Any], stamp: str | None = None) -> str:
    """The request body: {"type", "timestamp", "data"}, the shape Standard Webhooks suggests
    (`stamp`: iso(at), when the caller writes many events of one moment)."""
    return json.dumps(
        {"type": str(event_type), "timestamp": stamp or iso(at), "data": data}, separators=(",", ":"), ensure_ascii=False
    )
