"""`scriptmail queue`: recipients not yet delivered, like mailq."""

from __future__ import annotations

import time
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from scriptmail.cli.log import recipient_table
from scriptmail.cli.root import JsonOption, app, open_store, out, print_json, settings_of
from scriptmail.store import log as store_log


@app.command()
def queue(
    ctx: typer.Context,
    hosting: Annotated[str | None, typer.Option(help="Only this hosting.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    held: Annotated[bool, typer.Option("--held", help="Only mail held because its hosting does not send.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Recipients not yet delivered, like mailq."""
    settings = settings_of(ctx)
    with open_store(ctx) as connection:
        rows = store_log.queued(connection, hosting=hosting, limit=limit, held_only=held)
        rows = store_log.explain_waits(connection, rows, settings.plan, time.time(), ZoneInfo(settings.timezone))
    if as_json:
        print_json(rows)
        return
    out.print(recipient_table(rows, f"{len(rows)} recipient(s) {'held' if held else 'in the queue'}"))
