"""`scriptmail suppression ...`: a hosting's suppression list (`--hosting NAME`) or the platform's:
list, add, remove, import and export (CSV)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Connection

from scriptmail.cli.root import JsonOption, app, fail, open_store, out, print_json, settings_of, when
from scriptmail.store import hostings as hosting_store
from scriptmail.store import suppressions
from scriptmail.suppression import csvfile
from scriptmail.suppression.rules import EntryError

suppression_app = typer.Typer(
    help="Suppression lists: addresses not attempted any more (a hosting's, or with no --hosting the platform's).",
    no_args_is_help=True,
)
app.add_typer(suppression_app, name="suppression")

HostingOption = Annotated[str | None, typer.Option("--hosting", help="This hosting's list; without it, the platform's list.")]
MAX_IMPORT = 50 * 1024 * 1024


def _scope(connection: Connection, hosting: str | None) -> int:
    if hosting is None:
        return suppressions.PLATFORM
    found = hosting_store.find_hosting(connection, name=hosting)
    if found is None:
        fail(f"no hosting named {hosting!r}")
    return found.id


def _days(ctx: typer.Context, hosting: str | None) -> int | None:
    """A hosting's entries expire after `delivery.suppression_days`; the platform's stay until removed."""
    return settings_of(ctx).delivery.suppression_days if hosting is not None else None


@suppression_app.command("list")
def suppression_list(
    ctx: typer.Context,
    hosting: HostingOption = None,
    search: Annotated[str, typer.Option(help="Only entries containing this text.")] = "",
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """The entries of a list, by address."""
    with open_store(ctx) as connection:
        rows = suppressions.entries(connection, _scope(connection, hosting), time.time(), search=search, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("entry", "kind", "reason", "reply", "since", "until", title=f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")
    for row in rows:
        reply = f"{row['code'] or ''} {row['reply']}".strip()
        reason = f"{row['reason']} (not applied: {row['refused']})" if row["refused"] else row["reason"]
        table.add_row(row["value"], row["kind"], reason, reply[:80], when(row["created_at"]), when(row["expires_at"]) or "removed")
    out.print(table)


@suppression_app.command("add")
def suppression_add(
    ctx: typer.Context,
    value: Annotated[str, typer.Argument(help="An address, a domain, or (platform list only) a pattern like *@spamtrap.example.")],
    hosting: HostingOption = None,
    reason: Annotated[str, typer.Option(help="Why, shown with the entry (at most 32 characters).")] = "manual",
) -> None:
    """Add an entry (or renew one that is there)."""
    if len(reason) > 32:
        fail("--reason: at most 32 characters")
    with open_store(ctx, write=True) as connection:
        try:
            added = suppressions.add(connection, _scope(connection, hosting), value, time.time(), _days(ctx, hosting), reason=reason)
        except EntryError as error:
            fail(str(error))
    out.print(f"{added.kind.value} {added.value} {'added' if added.created else 'renewed'}", highlight=False)


@suppression_app.command("remove")
def suppression_remove(
    ctx: typer.Context,
    value: str,
    hosting: HostingOption = None,
    requeue: Annotated[bool, typer.Option("--requeue", help="Send again the mail it suppressed in the last 72 hours.")] = False,
) -> None:
    """Remove an entry; with --requeue, mail suppressed by it in the last 72 h goes back to the queue."""
    with open_store(ctx, write=True) as connection:
        removed = suppressions.remove(connection, _scope(connection, hosting), value, time.time(), requeue=requeue)
    if not removed.found:
        fail(f"{value} is not on the list")
    out.print(f"{value.strip().lower()} removed" + (f"; {removed.requeued} recipient(s) re-queued" if requeue else ""), highlight=False)


@suppression_app.command("import")
def suppression_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV file: value[,reason] per line, optional header; '-' reads standard input.")],
    hosting: HostingOption = None,
) -> None:
    """Add the entries of a CSV file. Each bad line is named on standard error and the others are
    imported (exit status 1 when some line was refused); a file that is not CSV text imports nothing."""
    try:
        raw = sys.stdin.buffer.read(MAX_IMPORT + 1) if str(path) == "-" else path.read_bytes()
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}")
    if len(raw) > MAX_IMPORT:
        fail(f"{path}: larger than {MAX_IMPORT // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        fail(f"{path}: line {line}: not UTF-8 text")
    try:
        parsed = csvfile.parse(text, allow_patterns=hosting is None)
    except csvfile.CsvError as error:
        fail(f"{path}: {error}; nothing imported")
    added = []
    if parsed.items:
        with open_store(ctx, write=True) as connection:
            added = suppressions.add_many(connection, _scope(connection, hosting), parsed.items, time.time(), _days(ctx, hosting))
    new = sum(1 for entry in added if entry.created)
    out.print(f"{len(added)} entr{'y' if len(added) == 1 else 'ies'} imported ({new} new, {len(added) - new} renewed)", highlight=False)
    if parsed.refused:
        for line, _text, why in parsed.refused:
            sys.stderr.write(f"{path}: line {line}: {why}\n")
        fail(f"{path}: {len(parsed.refused)} line(s) refused, not imported")


@suppression_app.command("export")
def suppression_export(ctx: typer.Context, hosting: HostingOption = None) -> None:
    """The whole list as CSV on standard output (what `import` reads)."""
    rows = []
    with open_store(ctx) as connection:
        scope, after, now = _scope(connection, hosting), None, time.time()
        while page := suppressions.entries(connection, scope, now, after=after, limit=5000):
            rows.extend(page)
            after = page[-1]["value"]
    sys.stdout.write(csvfile.render(rows))
