"""The operator's read API of traffic shaping and outbound pools: `/1.0/admin/sites` (each busy or
slowed provider site: its limits now, connections, in-flight and deferred counts, why it was
slowed) and `/1.0/admin/pools` (addresses, EHLO name, which addresses could not be bound).

What the delivery nodes publish (store.delivery_sites), merged across nodes, with the connections
every process holds now (store.site_shares). Scope `read`, as every GET under /1.0/admin.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from scriptmail.shaping.sites import Limits
from scriptmail.store import delivery_sites, site_deferred, site_shares
from scriptmail.store.site_shares import SiteShares
from scriptmail.web.api_auth import Reader
from scriptmail.web.context import WebContext
from scriptmail.web.problems import responses

router = APIRouter(prefix="/1.0/admin", tags=["admin"])


class SiteLimits(BaseModel):
    connections: int = Field(description="Connections open at once, every process and node together.")
    messages_per_connection: int
    per_minute: int = Field(description="Recipients a minute; 0: no limit.")
    per_hour: int = Field(description="Recipients an hour; 0: no limit.")


class SiteOut(BaseModel):
    name: str = Field(description="The provider site (`google`, `microsoft`...) or a domain with its own MX.")
    limits: SiteLimits = Field(description="The limits now: halved per slow-down level.")
    configured: SiteLimits = Field(description="The limits when the site is at full speed.")
    level: int = Field(description="Slow-down level: 0 at full speed; each level halves the limits.")
    reason: str = Field(description="The reply that slowed the site down; empty at full speed.")
    paused_for: float = Field(description="Seconds before the site gets a new message (after a 421).")
    recovers_in: float = Field(description="Seconds before the site gets one level back.")
    open_connections: int = Field(description="Connections to the site open now, counted in the store for every process.")
    in_flight: int = Field(description="Recipients being delivered to the site now.")
    sent: int = Field(description="Recipients the site accepted, since each node started.")
    deferred: int = Field(description="Recipients waiting now in deferred state whose domain belongs to the site.")
    postponed: int = Field(description="Recipients put back in the queue by shaping (no attempt counted), since each node started.")
    slowdowns: int = Field(description="Times the site asked to slow down, since each node started.")
    nodes: list[str] = Field(description="The delivery nodes that reported the site.")


class SiteList(BaseModel):
    items: list[SiteOut]


class UnusableAddress(BaseModel):
    address: str
    error: str = Field(description="Why it cannot be bound; it is skipped.")


class PoolOut(BaseModel):
    name: str
    addresses: list[str] = Field(description="The source addresses delivery binds to in turn.")
    helo_name: str = Field(description="The EHLO name the pool's connections give.")
    unusable: list[UnusableAddress] = Field(description="Configured addresses this machine could not bind.")
    sent: int = Field(description="Recipients sent through the pool, since each node started.")
    published: bool = Field(description="Whether a running delivery node reported the pool (else: the configuration only).")


class PoolList(BaseModel):
    items: list[PoolOut]


def _context(request: Request) -> WebContext:
    return request.app.state.context


def _limits(data: dict | None) -> SiteLimits:
    data = data or {}
    return SiteLimits(**{key: int(data.get(key) or 0) for key in Limits.__slots__})


@router.get("/sites", response_model=SiteList, summary="The busy and slowed provider sites", responses=responses(401, 403, 429))
async def list_sites(request: Request, caller: Reader) -> SiteList:
    context = _context(request)
    now = context.clock()
    table = context.settings.delivery.site_table()
    live = await context.read(lambda c: site_deferred.current_sites(c, table, now))
    shares = SiteShares(context.engine)
    open_now = await asyncio.to_thread(shares.run, site_shares.open_connections, now)
    items = [
        SiteOut(
            name=row["name"], limits=_limits(row.get("limits")), configured=_limits(row.get("configured")),
            level=int(row.get("level") or 0), reason=str(row.get("reason") or ""),
            paused_for=float(row.get("paused_for") or 0), recovers_in=float(row.get("recovers_in") or 0),
            open_connections=open_now.get(row["name"], 0), in_flight=int(row.get("in_flight") or 0),
            sent=int(row.get("sent") or 0), deferred=int(row.get("deferred") or 0),
            postponed=int(row.get("postponed") or 0), slowdowns=int(row.get("slowdowns") or 0),
            nodes=list(row.get("nodes") or []),
        )
        for row in live
    ]  # fmt: skip
    items.sort(key=lambda site: (-site.level, -site.open_connections, -site.in_flight, site.name))
    return SiteList(items=items)


@router.get("/pools", response_model=PoolList, summary="The outbound IP pools", responses=responses(401, 403, 429))
async def list_pools(request: Request, caller: Reader) -> PoolList:
    context = _context(request)
    now = context.clock()
    published = {row["name"]: row for row in await context.read(lambda c: delivery_sites.current(c, "pool", now))}
    delivery = context.settings.delivery
    items = []
    for name, pool in delivery.pools.items():
        seen = published.get(name)
        unusable = (seen or {}).get("unusable") or {}
        items.append(
            PoolOut(
                name=name,
                addresses=list(seen["addresses"]) if seen else [a for a in pool.addresses if a not in unusable],
                helo_name=(seen or {}).get("helo_name") or pool.helo_name or delivery.helo_name or context.settings.hostname,
                unusable=[UnusableAddress(address=address, error=str(why)) for address, why in sorted(unusable.items())],
                sent=int((seen or {}).get("sent") or 0),
                published=seen is not None,
            )
        )
    return PoolList(items=items)
