"""`scriptmail log`: the message log, one row per recipient, and one recipient in full."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from scriptmail.cli.root import JsonOption, app, fail, open_store, out, print_json, settings_of, when
from scriptmail.model import RecipientStatus
from scriptmail.store import log as store_log


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
