"""`scriptmail report ...`: preview or send a hosting's daily error report."""

from __future__ import annotations

import email
import email.policy
import sys
import time
from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from scriptmail.cli.root import app, fail, open_store, out, settings_of
from scriptmail.reports.daily import render as render_report
from scriptmail.scheduler import daily_reports
from scriptmail.store import hostings as hosting_store

report_app = typer.Typer(help="The daily error report of a hosting.", no_args_is_help=True)
app.add_typer(report_app, name="report")


DateOption = Annotated[str | None, typer.Option("--date", help="The day reported on, YYYY-MM-DD (default: yesterday).")]


def _report_day(ctx: typer.Context, text: str | None) -> date:
    if text is None:
        return datetime.now(ZoneInfo(settings_of(ctx).timezone)).date() - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"--date {text!r}: use YYYY-MM-DD")


@report_app.command("preview")
def report_preview(ctx: typer.Context, name: str, day: DateOption = None, raw: Annotated[bool, typer.Option(help="Print the whole message.")] = False) -> None:
    """Print the report a hosting gets (or would get) for a day, without sending it."""
    settings = settings_of(ctx)
    when = _report_day(ctx, day)
    with open_store(ctx) as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        if hosting is None:
            fail(f"no hosting named {name!r}")
        report, recipient = daily_reports.build(connection, settings, hosting.id, when)
    subject, data = render_report(report, settings.control.notify_from, recipient, settings.hostname, time.time())
    if raw:
        sys.stdout.buffer.write(data)
        return
    message = email.message_from_bytes(data, policy=email.policy.default)
    out.print(f"To: {recipient}\nSubject: {subject}\n", highlight=False, markup=False)
    out.print(message.get_body(("plain",)).get_content(), highlight=False, markup=False)


@report_app.command("send")
def report_send(ctx: typer.Context, name: str, day: DateOption = None) -> None:
    """Queue a hosting's report for a day now, even if it went out already."""
    settings = settings_of(ctx)
    when = _report_day(ctx, day)
    with open_store(ctx, write=True) as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        if hosting is None:
            fail(f"no hosting named {name!r}")
        queue_id = daily_reports.send(connection, settings, hosting.id, when, time.time(), force=True)
    if queue_id is None:
        out.print(f"{name}: no failures on {when}; nothing to send")
        return
    out.print(f"{name}: report for {when} queued as {queue_id} to {hosting.report_recipient}")
