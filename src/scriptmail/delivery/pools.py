"""Outbound IP pools: which pool a hosting's mail leaves through, and the source address and EHLO
name of the next connection. The choice is pure (rules over a hosting's name, state, plan, age);
the store is read once per state refresh, never per message."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection, or_, select

from scriptmail.config import PoolRules, PoolSettings
from scriptmail.store.schema import hostings

log = logging.getLogger(__name__)


class HostingFacts(NamedTuple):
    id: int
    name: str
    state: str
    plan: str
    created_at: float


def pool_of(rules: PoolRules, hosting: HostingFacts, now: float) -> str:
    """The pool named by the first matching rule: hosting, state, new hosting, plan, default."""
    return (
        rules.hostings.get(hosting.name)
        or rules.states.get(hosting.state)
        or (rules.new_hostings if rules.new_hostings and now - hosting.created_at < rules.new_hosting_days * 86400 else "")
        or rules.plans.get(hosting.plan)
        or rules.default
    )


def matching_hostings(connection: Connection, rules: PoolRules, now: float) -> list[HostingFacts]:
    """The hostings some rule other than the default names (the rest take the default)."""
    conditions = []
    if rules.hostings:
        conditions.append(hostings.c.name.in_(list(rules.hostings)))
    if rules.states:
        conditions.append(hostings.c.state.in_(list(rules.states)))
    if rules.new_hostings:
        conditions.append(hostings.c.created_at > now - rules.new_hosting_days * 86400)
    if rules.plans:
        conditions.append(hostings.c.plan.in_(list(rules.plans)))
    if not conditions:
        return []
    columns = (hostings.c.id, hostings.c.name, hostings.c.state, hostings.c.plan, hostings.c.created_at)
    rows = connection.execute(select(*columns).where(hostings.c.deleted_at.is_(None), or_(*conditions))).all()
    return [HostingFacts(*row) for row in rows]


def can_bind(address: str) -> str:
    """'' when this machine can send from `address`, else why not."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError as error:
        return error.strerror or str(error)
    return ""


@dataclass
class Pool:
    """A pool's usable addresses, taken in turn."""

    name: str
    addresses: list[str]
    helo_name: str
    unusable: dict[str, str]  # address -> why it cannot be bound (reported, skipped)
    sent: int = 0
    _next: int = 0

    def next_source(self) -> tuple[str, str] | None:
        """(address, EHLO name) for the next connection; None when no address can be bound."""
        if not self.addresses:
            return None
        address = self.addresses[self._next % len(self.addresses)]
        self._next += 1
        return address, self.helo_name


def open_pools(pools: dict[str, PoolSettings], helo_name: str) -> dict[str, Pool]:
    """The configured pools with each address checked by binding to it; one that cannot be bound
    is reported and skipped. A pool left with no address sends from the machine's default."""
    opened = {}
    for name, settings in pools.items():
        unusable = {address: why for address in settings.addresses if (why := can_bind(address))}
        for address, why in unusable.items():
            log.error("pool %s: cannot send from %s (%s); skipping that address", name, address, why)
        usable = [address for address in settings.addresses if address not in unusable]
        if not usable:
            log.error("pool %s: none of its addresses can be bound; its mail leaves from the default address", name)
        opened[name] = Pool(name, usable, settings.helo_name or helo_name, unusable)
    return opened
