"""The operator's view of traffic shaping and outbound pools (`/operator/sites`): every busy or
slowed provider site with its limits now and why it was slowed, the pools and the addresses that
cannot be bound, and the configured site table. Read from what the delivery nodes publish."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from scriptmail.store import delivery_sites, site_deferred
from scriptmail.web.operator import limits_text, operator_page, site_rows

router = APIRouter(prefix="/operator", include_in_schema=False)


@router.get("/sites")
async def sites_page(request: Request) -> Response:
    page = await operator_page(request)
    context = page.context
    now = context.clock()
    table = context.settings.delivery.site_table()
    live, pools = await context.read(
        lambda c: (site_deferred.current_sites(c, table, now), delivery_sites.current(c, "pool", now))
    )
    published = {pool["name"]: pool for pool in pools}
    pool_rows = []
    for name, pool in context.settings.delivery.pools.items():
        seen = published.get(name, {})
        pool_rows.append({
            "name": name, "addresses": seen.get("addresses", pool.addresses), "unusable": seen.get("unusable", {}),
            "helo_name": seen.get("helo_name") or pool.helo_name or context.settings.delivery.helo_name or context.settings.hostname,
            "sent": seen.get("sent", 0), "published": name in published,
        })  # fmt: skip
    configured = [
        {"name": site.name, "match": ", ".join(site.mx + site.domains), "limits_text": limits_text(page, _as_dict(site.limits))}
        for site in table.sites.values()
    ]
    return page.render(
        "operator_sites.html",
        sites=site_rows(page, live),
        pools=pool_rows,
        configured=configured,
        default_text=limits_text(page, _as_dict(table.default)),
    )


def _as_dict(limits) -> dict:
    return {key: getattr(limits, key) for key in ("connections", "messages_per_connection", "per_minute", "per_hour")}
