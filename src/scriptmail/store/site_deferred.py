"""What waits now at each site: the recipients in deferred state whose domain maps to the site.

One grouped read on the partial index of deferred recipients by domain; a domain's site is the one
delivery recorded from its MX hosts (domain_sites), else what the site table says of the name
alone. Readers (the operator's pages, `scriptmail sites`, the admin API) share one answer per
process for a few seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import asdict

from sqlalchemy import Connection, delete, text

from scriptmail.shaping.sites import SiteTable
from scriptmail.store import delivery_sites
from scriptmail.store.engine import upsert
from scriptmail.store.schema import domain_sites

CACHE_SECONDS = 3.0
MAX_EXTRA = 500  # sites not busy but with deferred mail, at most this many (the most deferred first)
REWRITE_AFTER = 3600.0  # a delivery node writes a domain's site again after this long, so that it stays fresh

_cache: dict[str, tuple[float, dict[str, int]]] = {}
_lock = threading.Lock()


def by_site(connection: Connection, table: SiteTable, max_age: float = CACHE_SECONDS) -> dict[str, int]:
    """Deferred recipients per site, read at most once per `max_age` seconds per process and store."""
    key = str(connection.engine.url)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
    # Covered by the partial index (domain, status) of deferred rows; SQLite's planner would take the
    # (status, next_attempt_at) index and sort, so it is named there.
    hint = " INDEXED BY ix_recipients_deferred_domain" if connection.dialect.name == "sqlite" else ""
    rows = connection.execute(
        text(
            f"SELECT d.domain, m.site, d.n FROM (SELECT domain, count(*) AS n FROM recipients{hint}"
            " WHERE status = 'deferred' GROUP BY domain) AS d LEFT JOIN domain_sites AS m ON m.domain = d.domain"
        )
    ).all()
    counts: dict[str, int] = {}
    for domain, site, count in rows:
        name = site or table.site_of(domain)
        counts[name] = counts.get(name, 0) + int(count)
    with _lock:
        _cache[key] = (time.monotonic(), counts)
    return counts


def current_sites(connection: Connection, table: SiteTable, now: float, max_age: float = CACHE_SECONDS) -> list[dict]:
    """The sites the delivery nodes publish, each with its live deferred count, and after them the
    sites that are not busy but have deferred mail."""
    live = delivery_sites.current(connection, "site", now)
    counts = by_site(connection, table, max_age)
    for row in live:
        row["deferred"] = counts.get(row["name"], 0)
    shown = {row["name"] for row in live}
    waiting = sorted(((n, name) for name, n in counts.items() if name not in shown and n), key=lambda item: (-item[0], item[1]))
    for count, name in waiting[:MAX_EXTRA]:
        limits = asdict(table.limits(name))
        live.append({
            "name": name, "configured": limits, "limits": limits, "level": 0, "paused_for": 0.0, "recovers_in": 0.0,
            "reason": "", "connections": 0, "in_flight": 0, "sent": 0, "deferred": count, "postponed": 0,
            "slowdowns": 0, "nodes": [],
        })  # fmt: skip
    return live


def record(connection: Connection, mapped: Iterable[tuple[str, str]], now: float, keep: float) -> None:
    """Delivery found these (domain, site) pairs from MX hosts; rows not seen for `keep` seconds go."""
    values = [{"domain": domain, "site": site, "seen_at": now} for domain, site in mapped]
    if not values:
        return
    statement = upsert(connection, domain_sites)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[domain_sites.c.domain], set_={"site": statement.excluded.site, "seen_at": statement.excluded.seen_at}
        ),
        values,
    )
    connection.execute(delete(domain_sites).where(domain_sites.c.seen_at < now - keep))
