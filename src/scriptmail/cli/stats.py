"""`scriptmail stats`: a hosting's counters, volumes, bounces and scripts."""

from __future__ import annotations

import time
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from scriptmail.cli.root import JsonOption, app, fail, open_store, out, print_json, settings_of, when
from scriptmail.store import hostings as hosting_store
from scriptmail.store import stats


@app.command("stats")
def stats_(
    ctx: typer.Context,
    name: str,
    bounces: Annotated[int, typer.Option(min=1, max=stats.MAX_BOUNCES, help="Bounces to list, newest first.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many of the newest bounces (pagination).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """A hosting's counters (the reference's sent, sentToday, maxPerDay, bounce), volumes, bounces, scripts."""
    settings = settings_of(ctx)
    now, zone = time.time(), ZoneInfo(settings.timezone)
    with open_store(ctx) as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        if hosting is None:
            fail(f"no hosting named {name!r}")
        value = {
            "hosting": hosting.name,
            "state": hosting.state.value,
            "plan": hosting.plan,
            **stats.counters(connection, hosting.id, settings.plan(hosting.plan), now),
            "statuses": stats.status_counts(connection, hosting.id),
            "days": stats.daily_volumes(connection, hosting.id, now),
            "hours": stats.hourly_volumes(connection, hosting.id, now, zone),
            "bounces": stats.bounces(connection, hosting.id, limit=bounces, offset=offset),
            "scripts": stats.scripts(connection, hosting.id),
        }
    if as_json:
        print_json(value)
        return
    per_day = f"{value['sentToday']} / {value['maxPerDay']}" if value["maxPerDay"] else str(value["sentToday"])
    out.print(f"{name} ({value['state']}, plan {value['plan']}): sent {value['sent']}, today {per_day}, in error {value['bounce']}")
    out.print("recipients: " + ", ".join(f"{k} {v}" for k, v in value["statuses"].items() if v))
    days = Table("day", "accepted", "sent", "bounced", "expired", title="last 7 days")
    for day in value["days"][-7:]:
        days.add_row(day["date"], *(str(day[key]) for key in ("accepted", "sent", "bounced", "expired")))
    out.print(days)
    errors = Table("when", "recipient", "status", "reply", title=f"latest {len(value['bounces'])} in error")
    for row in value["bounces"]:
        errors.add_row(when(row["date"]), row["to"], row["status"], f"{row['code'] or ''} {row['message']}"[:120])
    out.print(errors)
    scripts = Table("script", "messages", "recipients", "last", title="originating scripts")
    for row in value["scripts"]:
        scripts.add_row(row["script"] or "(none)", str(row["messages"]), str(row["recipients"]), when(row["last_at"]))
    out.print(scripts)
