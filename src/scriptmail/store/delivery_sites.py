"""The shaping and pool snapshots that delivery nodes publish, merged across nodes for readers."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import Connection, delete, insert, select

from scriptmail.store.schema import delivery_sites

STALE = 60.0  # a node that has not published for this long is not counted (stopped or gone)


def publish(connection: Connection, node: str, rows: Iterable[tuple[str, str, dict]], now: float) -> None:
    """Replace this node's snapshot: (kind, name, data) rows."""
    connection.execute(delete(delivery_sites).where(delivery_sites.c.node == node))
    values = [
        {"node": node, "kind": kind, "name": name, "data": json.dumps(data), "updated_at": now} for kind, name, data in rows
    ]
    if values:
        connection.execute(insert(delivery_sites), values)


def current(connection: Connection, kind: str, now: float) -> list[dict]:
    """Every node's fresh rows of `kind`, merged by name: counts add up, the slowest state wins."""
    rows = connection.execute(
        select(delivery_sites.c.node, delivery_sites.c.name, delivery_sites.c.data)
        .where(delivery_sites.c.kind == kind, delivery_sites.c.updated_at >= now - STALE)
        .order_by(delivery_sites.c.name, delivery_sites.c.node)
    ).all()
    merged: dict[str, dict] = {}
    for node, name, text in rows:
        data = json.loads(text)
        data["nodes"] = [node]
        known = merged.get(name)
        if known is None:
            merged[name] = {"name": name, **data}
            continue
        known["nodes"].append(node)
        for key in ("connections", "in_flight", "sent", "deferred", "postponed", "slowdowns"):
            if key in data:
                known[key] = known.get(key, 0) + data[key]
        if data.get("level", 0) > known.get("level", 0):
            for key in ("level", "limits", "reason", "paused_for", "recovers_in"):
                known[key] = data.get(key)
    return list(merged.values())
