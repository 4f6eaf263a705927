"""`scriptmail sites`: the provider sites delivery shapes traffic for, and the outbound pools."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import typer
from rich.table import Table

from scriptmail.cli.root import JsonOption, app, open_store, out, print_json, settings_of
from scriptmail.store import delivery_sites, site_deferred


def _rate(value: int) -> str:
    return str(value) if value else "-"


def _limits(limits: dict) -> str:
    return f"{limits['connections']} conn, {limits['messages_per_connection']}/conn, {_rate(limits['per_minute'])}/min, {_rate(limits['per_hour'])}/h"


@app.command()
def sites(
    ctx: typer.Context,
    configured: Annotated[
        bool, typer.Option("--configured", help="The site table (shipped and configured) instead of live state.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Busy or slowed provider sites and the outbound pools, as the delivery nodes see them now."""
    settings = settings_of(ctx)
    if configured:
        table = settings.delivery.site_table()
        rows = [
            {
                "name": s.name,
                "mx": list(s.mx),
                "domains": list(s.domains),
                "shipped": s.shipped,
                "limits": dataclasses.asdict(s.limits),
            }
            for s in table.sites.values()
        ]
        rows.append(
            {"name": "(any other domain)", "mx": [], "domains": [], "shipped": False, "limits": dataclasses.asdict(table.default)}
        )
        if as_json:
            print_json(rows)
            return
        view = Table(title=f"{len(rows) - 1} configured site(s)")
        for column in ("site", "MX suffixes / domains", "limits"):
            view.add_column(column)
        for row in rows:
            view.add_row(row["name"], ", ".join(row["mx"] + row["domains"]), _limits(row["limits"]))
        out.print(view)
        return
    now = time.time()
    with open_store(ctx) as connection:
        live = site_deferred.current_sites(connection, settings.delivery.site_table(), now)
        pools = delivery_sites.current(connection, "pool", now)
    for name, pool in settings.delivery.pools.items():
        if not any(p["name"] == name for p in pools):
            pools.append(
                {"name": name, "addresses": pool.addresses, "unusable": {}, "helo_name": pool.helo_name, "sent": 0, "nodes": []}
            )
    if as_json:
        print_json({"sites": live, "pools": pools})
        return
    view = Table(title=f"{len(live)} busy or slowed site(s)")
    for column in ("site", "limits now", "connections", "in flight", "sent", "deferred", "waiting", "slowed"):
        view.add_column(column)
    for row in live:
        slowed = f"level {row['level']}: {row['reason']}" if row.get("level") else ""
        view.add_row(
            row["name"], _limits(row["limits"]), str(row["connections"]), str(row["in_flight"]), str(row["sent"]),
            str(row["deferred"]), str(row["postponed"]), slowed,
        )  # fmt: skip
    out.print(view)
    if pools:
        table = Table(title=f"{len(pools)} pool(s)")
        for column in ("pool", "addresses", "EHLO name", "sent", "cannot bind"):
            table.add_column(column)
        for pool in pools:
            unusable = ", ".join(f"{a} ({why})" for a, why in pool["unusable"].items())
            table.add_row(pool["name"], ", ".join(pool["addresses"]), pool["helo_name"], str(pool["sent"]), unusable)
        out.print(table)
