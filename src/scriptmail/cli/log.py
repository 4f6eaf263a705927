"""`scriptmail log`: the message log, one row per recipient, and one recipient in full."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from scriptmail.cli.root import JsonOption, app, fail, open_store, out, print_json, settings_of, when
from scriptmail.exports import columns, formats, window
from scriptmail.model import RecipientStatus
from scriptmail.store import export_rows
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from scriptmail.store.hostings import SYSTEM_HOSTING

EX_CANTCREAT = 73


def recipient_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table("id", "queue id", "hosting", "received", "sender", "recipient", "status", "tries", "next try", "last reply", title=title)
    for row in rows:
        reply = f"{row['last_code'] or ''} {row['last_text']}".strip()
        waiting = row["status"] in (RecipientStatus.QUEUED, RecipientStatus.DEFERRED)
        table.add_row(
            str(row["id"]),
            str(row["queue_id"]),
            row["hosting"],
            when(row["received_at"]),
            row["sender"],
            row["recipient"],
            row["status"],
            str(row["attempts"]),
            when(row["next_attempt_at"]) if waiting else "",
            reply[:80],
        )
    return table



log_app = typer.Typer(help="The message log: one row per recipient.")
app.add_typer(log_app, name="log")


def _moment(ctx: typer.Context, text: str | None, option: str) -> float | None:
    """YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] in the platform's time zone, as UTC seconds."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    return (moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(settings_of(ctx).timezone))).timestamp()


@log_app.callback(invoke_without_command=True)
def log_(
    ctx: typer.Context,
    hosting: Annotated[str | None, typer.Option(help="Only this hosting.")] = None,
    status: Annotated[RecipientStatus | None, typer.Option(help="Only this status.")] = None,
    recipient: Annotated[str | None, typer.Option(help="Recipient address contains this (case-insensitive).")] = None,
    sender: Annotated[str | None, typer.Option(help="Envelope sender contains this.")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject contains this.")] = None,
    script: Annotated[str | None, typer.Option(help="Originating script, directory or command contains this.")] = None,
    since: Annotated[str | None, typer.Option(help="Received at or after: YYYY-MM-DD[THH:MM].")] = None,
    until: Annotated[str | None, typer.Option(help="Received before: YYYY-MM-DD[THH:MM].")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The latest recipients with their status and last reply; `log show ID` for one in full."""
    if ctx.invoked_subcommand is not None:
        return
    filters = store_log.Filters(
        hosting=hosting, status=status, recipient=recipient, sender=sender, subject=subject, script=script,
        since=_moment(ctx, since, "--since"), until=_moment(ctx, until, "--until"),
    )  # fmt: skip
    with open_store(ctx) as connection:
        rows = store_log.recent(connection, filters, limit=limit)
    if as_json:
        print_json(rows)
        return
    out.print(recipient_table(rows, f"latest {len(rows)} recipient(s)"))


@log_app.command("show")
def log_show(ctx: typer.Context, recipient_id: Annotated[int, typer.Argument(metavar="ID", help="The recipient's id (first column of `log`).")], as_json: JsonOption = False) -> None:
    """One recipient in full: its message, every delivery attempt, and reports that came back."""
    with open_store(ctx) as connection:
        found = store_log.detail(connection, recipient_id)
    if found is None:
        fail(f"no recipient with id {recipient_id}")
    if as_json:
        print_json(found)
        return
    table = Table(show_header=False, title=f"recipient {recipient_id}")
    for key, value in found.items():
        if key not in ("attempts", "reports"):
            table.add_row(key, when(value) if key.endswith("_at") and value else str(value))
    out.print(table)
    attempts_table = Table("when", "node", "server", "code", "reply", "seconds", title="attempts")
    for attempt in found["attempts"]:
        attempts_table.add_row(
            when(attempt["at"]), attempt["node"], attempt["mx_host"], str(attempt["code"] or ""), attempt["text"][:120], f"{attempt['duration']:.2f}"
        )
    out.print(attempts_table)
    if found["reports"]:
        reports_table = Table("when", "kind", "from", "summary", title="reports that came back")
        for report in found["reports"]:
            reports_table.add_row(when(report["received_at"]), report["kind"], report["client"], report["summary"][:120])
        out.print(reports_table)


EXPORT_KINDS = {"log": columns.MESSAGES, "bounces": columns.BOUNCES, "suppressions": columns.SUPPRESSIONS}


@log_app.command("export")
def log_export(
    ctx: typer.Context,
    hosting: Annotated[str, typer.Option(help="The hosting whose mail is exported.")],
    kind: Annotated[str, typer.Option(help="log (every recipient), bounces (bounced or expired) or suppressions.")] = "log",
    format: Annotated[str, typer.Option("--format", help="csv (UTF-8, a header row) or json (one array).")] = "csv",
    status: Annotated[RecipientStatus | None, typer.Option(help="Only this status.")] = None,
    recipient: Annotated[str | None, typer.Option(help="Recipient address contains this (case-insensitive).")] = None,
    sender: Annotated[str | None, typer.Option(help="Envelope sender contains this.")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject contains this.")] = None,
    script: Annotated[str | None, typer.Option(help="Originating script, directory or command contains this.")] = None,
    since: Annotated[str | None, typer.Option(help=f"Received at or after: YYYY-MM-DD[THH:MM]; default {window.DEFAULT_DAYS} days before --until.")] = None,
    until: Annotated[str | None, typer.Option(help=f"Received before: YYYY-MM-DD[THH:MM] (a day is included); default now; at most {window.MAX_DAYS} days after --since.")] = None,
    search: Annotated[str, typer.Option(help="suppressions: only entries containing this.")] = "",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")] = None,
) -> None:
    """A hosting's log, emails in error or suppressed addresses as CSV or JSON, streamed: the
    filters of `log` within a time window, the same rows as the area's downloads."""
    if kind not in EXPORT_KINDS:
        fail(f"--kind {kind[:40]!r}: use log, bounces or suppressions", 2)
    if format not in formats.FORMATS:
        fail(f"--format {format[:40]!r}: use csv or json", 2)
    texts = {"--recipient": recipient, "--sender": sender, "--subject": subject, "--script": script, "--search": search}
    for option, text in texts.items():
        if text and (len(text) > 320 or any(ord(ch) < 32 or ord(ch) == 127 for ch in text)):
            fail(f"{option}: at most 320 characters, and no control character", 2)
    settings = settings_of(ctx)
    now = time.time()
    try:
        found = window.read(since, until, now, ZoneInfo(settings.timezone))
    except window.BadWindow as bad:
        fail(f"--{bad.field}: {bad}", 2)
    with open_store(ctx) as connection:
        record = hosting_store.find_hosting(connection, name=hosting)
        if record is None or hosting == SYSTEM_HOSTING:
            fail(f"no hosting named {hosting!r}")
        connection.rollback()  # no transaction held open while the file streams
        engine = connection.engine
        if kind == "suppressions":
            rows = export_rows.suppression_rows(engine, record.id, now, search=search)
        else:
            filters = store_log.Filters(
                hosting_id=record.id, status=status, recipient=recipient, sender=sender, subject=subject, script=script,
                since=found.since, until=found.until,
            )  # fmt: skip
            statuses = export_rows.BOUNCE_STATUSES if kind == "bounces" else ()
            rows = export_rows.log_rows(engine, filters, statuses)
        exported = EXPORT_KINDS[kind]
        chunks = formats.chunks(format, exported.columns, exported.rows(rows))
        if output is None:
            try:
                for chunk in chunks:
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            except BrokenPipeError:  # `| head`: the reader has what it wanted
                sys.stdout = None  # type: ignore[assignment]  # nothing more to flush at exit
                raise typer.Exit(0) from None
            return
        partial = output.with_name(output.name + ".partial")
        try:
            with partial.open("wb") as file:
                for chunk in chunks:
                    file.write(chunk)
            partial.replace(output)  # a file that is there is whole
        except OSError as error:
            partial.unlink(missing_ok=True)
            fail(f"cannot write {output}: {error.strerror}", EX_CANTCREAT)
