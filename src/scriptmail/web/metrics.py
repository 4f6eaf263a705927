"""Prometheus metrics, read from the store (at most once a second per process), so every node
reports the same platform-wide figures: mail accepted and its outcomes, the queue by status,
hostings by state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import Connection, func, select

from scriptmail.model import HostingState, RecipientStatus
from scriptmail.store import delivery_sites, evidence
from scriptmail.store.domains import signing_totals
from scriptmail.store.schema import hosting_totals, hostings, recipients, script_counts

_WAITING = [RecipientStatus.QUEUED, RecipientStatus.DEFERRED, RecipientStatus.SENDING, RecipientStatus.HELD]


def snapshot(connection: Connection) -> dict:
    """Everything a scrape shows, in a few queries on summary rows and the status index."""
    waiting = dict(
        connection.execute(
            select(recipients.c.status, func.count()).where(recipients.c.status.in_([s.value for s in _WAITING])).group_by(recipients.c.status)
        ).all()
    )
    totals = connection.execute(
        select(*(func.coalesce(func.sum(hosting_totals.c[name]), 0) for name in ("sent", "bounced", "expired", "purged", "complaints", "suppressed")))
    ).one()
    accepted = connection.execute(select(func.coalesce(func.sum(script_counts.c.messages), 0), func.coalesce(func.sum(script_counts.c.recipients), 0))).one()
    live = hostings.c.deleted_at.is_(None)
    states = dict(connection.execute(select(hostings.c.state, func.count()).where(live).group_by(hostings.c.state)).all())
    return {"waiting": waiting, "totals": totals, "accepted": accepted, "states": states, "blocks": evidence.block_counts(connection),
            "dkim": signing_totals(connection), "sites": delivery_sites.current(connection, "site", time.time()),
            "pools": delivery_sites.current(connection, "pool", time.time())}


def render(values: dict) -> bytes:
    registry = CollectorRegistry(auto_describe=False)

    class _Snapshot:
        def collect(self):
            accepted = CounterMetricFamily("scriptmail_accepted_messages", "Messages accepted by intake.")
            accepted.add_metric([], values["accepted"][0])
            yield accepted
            accepted_rcpt = CounterMetricFamily("scriptmail_accepted_recipients", "Recipients accepted by intake.")
            accepted_rcpt.add_metric([], values["accepted"][1])
            yield accepted_rcpt
            outcomes = CounterMetricFamily("scriptmail_recipients_finished", "Recipients by final outcome.", labels=["outcome"])
            for name, value in zip(("sent", "bounced", "expired", "purged"), values["totals"]):
                outcomes.add_metric([name], value)
            outcomes.add_metric(["suppressed"], values["totals"][5])
            yield outcomes
            complaints = CounterMetricFamily("scriptmail_complaints", "Spam complaints received (feedback reports).")
            complaints.add_metric([], values["totals"][4])
            yield complaints
            queue = GaugeMetricFamily("scriptmail_queue_recipients", "Recipients not yet final, by status.", labels=["status"])
            for status in _WAITING:
                queue.add_metric([status.value], values["waiting"].get(status.value, 0))
            yield queue
            states = GaugeMetricFamily("scriptmail_hostings", "Hostings by sending state.", labels=["state"])
            for state in HostingState:
                states.add_metric([state.value], values["states"].get(state.value, 0))
            yield states
            blocks = CounterMetricFamily("scriptmail_automatic_blocks", "Automatic blocks by the policy engine, by signal.", labels=["signal"])
            wrong = CounterMetricFamily(
                "scriptmail_automatic_blocks_false_positive",
                "Automatic blocks an operator marked as false positives, by signal (to tune the thresholds).",
                labels=["signal"],
            )
            for signal in sorted(values["blocks"]["blocks"]):
                blocks.add_metric([signal], values["blocks"]["blocks"][signal])
                wrong.add_metric([signal], values["blocks"]["false_positives"].get(signal, 0))
            yield blocks
            yield wrong
            dkim = CounterMetricFamily(
                "scriptmail_dkim_messages",
                "Messages by DKIM signing as they are stored (signed with the From domain or the platform's; unsigned: not set up, "
                "or an error), for a hosting's mail and for the platform's own (notices, reports, DSNs).",
                labels=["mail", "result", "reason"],
            )  # fmt: skip
            for (mail, reason), value in values.get("dkim", {}).items():
                dkim.add_metric([mail, "signed" if reason in ("domain", "platform") else "unsigned", reason], value)
            yield dkim
            yield from _shaping(values.get("sites", []), values.get("pools", []))

    registry.register(_Snapshot())
    return generate_latest(registry)


def _shaping(sites: list[dict], pools: list[dict]):
    """Per provider site and per outbound pool, as the delivery nodes published them (summed over nodes)."""
    gauges = {
        "connections": GaugeMetricFamily("scriptmail_site_connections", "Open connections to a provider site.", labels=["site"]),
        "in_flight": GaugeMetricFamily("scriptmail_site_in_flight", "Recipients being delivered to a provider site.", labels=["site"]),
        "level": GaugeMetricFamily("scriptmail_site_slowdown_level", "How far a site is slowed down (0: full speed; each level halves its limits).", labels=["site"]),
    }  # fmt: skip
    limit = GaugeMetricFamily("scriptmail_site_limit", "A site's limits now (0: no rate limit).", labels=["site", "limit"])
    counters = {
        "sent": CounterMetricFamily("scriptmail_site_sent", "Recipients a site accepted (since each delivery node started).", labels=["site"]),
        "deferred": CounterMetricFamily("scriptmail_site_deferred", "Temporary failures a site answered.", labels=["site"]),
        "postponed": CounterMetricFamily("scriptmail_site_postponed", "Recipients put back in the queue by traffic shaping.", labels=["site"]),
        "slowdowns": CounterMetricFamily("scriptmail_site_slowdowns", "Times a site asked to slow down (421, 4.7.x).", labels=["site"]),
    }  # fmt: skip
    for site in sites:
        for key, family in (*gauges.items(), *counters.items()):
            family.add_metric([site["name"]], site.get(key, 0))
        for key, value in site["limits"].items():
            limit.add_metric([site["name"], key], value)
    yield from gauges.values()
    yield limit
    yield from counters.values()
    sent = CounterMetricFamily("scriptmail_pool_sent", "Recipients accepted through an outbound pool.", labels=["pool"])
    addresses = GaugeMetricFamily(
        "scriptmail_pool_addresses", "A pool's source addresses, by whether they can be bound.", labels=["pool", "usable"]
    )
    for pool in pools:
        sent.add_metric([pool["name"]], pool.get("sent", 0))
        addresses.add_metric([pool["name"], "yes"], len(pool.get("addresses", [])))
        addresses.add_metric([pool["name"], "no"], len(pool.get("unusable", {})))
    yield sent
    yield addresses


MAX_AGE_SECONDS = 1.0


class Scrapes:
    """One store read per second and process, however many scrapers ask.

    Prometheus scrapes every 15 s or more, so an answer up to a second old changes nothing for it;
    but a dashboard or a load balancer's health check polling /metrics must not turn every call
    into the queries and the rendering. Callers that arrive while a read runs wait for it."""

    def __init__(self, max_age: float = MAX_AGE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._clock = clock
        self._lock = asyncio.Lock()
        self._body = b""
        self._until = 0.0

    async def body(self, produce: Callable[[], Awaitable[bytes]]) -> bytes:
        if self._clock() < self._until:
            return self._body
        async with self._lock:
            if self._clock() >= self._until:
                self._body = await produce()
                self._until = self._clock() + self._max_age
            return self._body
