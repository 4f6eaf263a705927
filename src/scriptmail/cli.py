"""The `scriptmail` command: thin Typer commands over the parts; Rich tables for people, JSON for scripts."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from scriptmail.config import ConfigError, Settings, load_settings
from scriptmail.control.quota import day_start, hour_window_start
from scriptmail.control.states import Action, Actor, TransitionNotAllowed
from scriptmail.model import HostingState, RecipientStatus
from scriptmail.reports.daily import render as render_report
from scriptmail.scheduler import daily_reports
from scriptmail.scheduler.jobs import PURGE_POLL
from scriptmail.scheduler.purge import lease_name as purge_lease
from scriptmail.scheduler.purge import run_purge
from scriptmail.store import accounts, activity, leases, stats
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from scriptmail.store.engine import for_writing, open_engine
from scriptmail.store.hosting_control import Change, change_plan, change_state, history
from scriptmail.store.migrate import upgrade
from scriptmail.store.nodes import NodeInUse

EX_OSERR = 71
EX_TEMPFAIL = 75
EX_CONFIG = 78

app = typer.Typer(
    help="scriptmail: the outbound mail gateway of a shared web-hosting platform.", no_args_is_help=True, add_completion=False
)
hosting_app = typer.Typer(help="Manage hostings (the accounts whose scripts send mail).", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
report_app = typer.Typer(help="The daily error report of a hosting.", no_args_is_help=True)
user_app = typer.Typer(help="People who use the customer and operator areas and the API.", no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)
app.add_typer(hosting_app, name="hosting")
app.add_typer(db_app, name="db")
app.add_typer(report_app, name="report")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

# Piped output is not cut at 80 columns: an operator greps it, and commands must stay copyable.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration file (default: $SCRIPTMAIL_CONFIG, else built-in defaults)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


@app.callback()
def _main(ctx: typer.Context, config: ConfigOption = None) -> None:
    ctx.meta["config_args"] = ["--config", str(config)] if config is not None else []
    try:
        ctx.obj = load_settings(config)
    except ConfigError as error:
        err.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(EX_CONFIG) from None
    activity.set_zone(ZoneInfo(ctx.obj.timezone))


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


@contextmanager
def _store(ctx: typer.Context, write: bool = False) -> Iterator[Connection]:
    """A migrated store; a database that cannot be reached is a clean exit 75, not a traceback."""
    engine = open_engine(_settings(ctx).database_url, pool_size=1)
    try:
        upgrade(engine)
        with for_writing(engine).begin() if write else engine.connect() as connection:
            yield connection
    except OperationalError as error:
        err.print(f"[red]database unavailable: {str(error.orig or error).splitlines()[0]}[/red]", highlight=False)
        raise typer.Exit(EX_TEMPFAIL) from None
    finally:
        engine.dispose()


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(code)


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else ""


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


# --- serve -------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    parts: Annotated[
        str,
        typer.Option(
            help="Comma-separated parts to run: intake (= smtp + sendmail), smtp, sendmail, delivery, maildrop, scheduler, "
            "bounces (the report listener, when bounces.listen is set), web (API and metrics)."
        ),
    ] = "intake,delivery,maildrop,scheduler,bounces,web",
    processes: Annotated[
        int | None, typer.Option(min=1, max=64, help="Processes to run on this machine (default: config key `processes`, 1).")
    ] = None,
    demo: Annotated[bool, typer.Option(help="On an empty store, create a demo hosting and print how to use it.")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run scriptmail (all parts in one process by default) until SIGTERM or Ctrl-C."""
    from scriptmail.app import parse_parts, run_gateway

    try:
        chosen = parse_parts(parts)
    except ValueError as error:
        _fail(str(error), 2)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = _settings(ctx)
    demo_login = _create_demo(ctx) if demo else None
    copies = processes if processes is not None else settings.processes
    if copies > 1:
        _supervise(ctx, settings, chosen, copies, log_level, demo_login)
        return

    def ready(gateway: Any) -> None:
        out.print(f"scriptmail is running: parts {', '.join(chosen)}; store {_safe_url(settings.database_url)}")
        if gateway.smtp_port:
            out.print(f"  SMTP submission on {settings.intake.listen.rsplit(':', 1)[0]}:{gateway.smtp_port}, sendmail socket {settings.intake.socket}")
        if demo_login:
            _print_demo(settings, demo_login, gateway.smtp_port, gateway.web_port)

    try:
        run_gateway(settings, chosen, ready)
    except (OSError, RuntimeError, NodeInUse) as error:
        _fail(f"cannot start: {error}", EX_OSERR)
    except OperationalError as error:
        _fail(f"database unavailable: {str(error.orig or error).splitlines()[0]}", EX_TEMPFAIL)


def _supervise(
    ctx: typer.Context, settings: Settings, parts: tuple[str, ...], copies: int, log_level: str, demo_login: DemoLogin | None
) -> None:
    from scriptmail.config import parse_host_port
    from scriptmail.supervisor import Supervisor

    if "smtp" in parts and parse_host_port(settings.intake.listen, listening=True)[1] == 0:
        _fail("several processes share one SMTP port: set intake.listen to a fixed port, not 0", 2)
    with _store(ctx):
        pass  # migrate once here, before the copies start
    out.print(f"scriptmail: supervising {copies} processes ({settings.node}-0 .. {settings.node}-{copies - 1})")
    if demo_login:
        _print_demo(settings, demo_login, parse_host_port(settings.intake.listen, listening=True)[1])
    raise typer.Exit(Supervisor(ctx.meta["config_args"], settings.node, parts, copies, log_level).run())


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# hosting, SMTP password, customer e-mail, password, API token, operator e-mail, password
DemoLogin = tuple[str, str, str, str, str, str, str]


def _create_demo(ctx: typer.Context) -> DemoLogin | None:
    with _store(ctx, write=True) as connection:
        if hosting_store.list_hostings(connection):
            return None
        password = secrets.token_urlsafe(12)
        hosting_store.add_hosting(
            connection, "demo", "owner@demo.invalid", uid=os.getuid(), plan="default", smtp_password=password
        )
        customer_password = accounts.new_password()
        customer = accounts.add_user(connection, "owner@demo.invalid", customer_password)
        accounts.grant(connection, customer, "demo")
        _, token = accounts.create_token(connection, customer, "demo")
        operator_password = accounts.new_password()
        operator = accounts.add_user(connection, "operator@demo.invalid", operator_password, operator=True)
        return "demo", password, customer.email, customer_password, token, operator.email, operator_password


def _print_demo(settings: Settings, login: DemoLogin, port: int | None, web_port: int | None = None) -> None:
    name, password, customer, customer_password, token, operator, operator_password = login
    host = settings.intake.listen.rsplit(":", 1)[0]
    web_host, _, configured_port = settings.web.listen.rpartition(":")
    web = f"http://{web_host}:{web_port or configured_port}"
    out.print(
        f"\nA demo hosting [bold]{name}[/bold] was created (uid {os.getuid()}, SMTP login {name} / {password}).\n"
        "Send it a test mail with the sendmail command:\n"
        f"  printf 'To: someone@example.com\\nSubject: hello\\n\\nIt works.\\n' | "
        f"SCRIPTMAIL_INTAKE__SOCKET={settings.intake.socket} .venv/bin/scriptmail-sendmail -t -i\n"
        "or over SMTP:\n"
        f"  swaks --server {host}:{port} --auth-user {name} --auth-password '{password}' --to someone@example.com\n"
        "then look at it with `.venv/bin/scriptmail queue` and `.venv/bin/scriptmail log`.\n"
        f"The demo customer [bold]{customer}[/bold] (password {customer_password}) owns it: log in at {web}/\n"
        f"or use its API token:\n  curl -H 'Authorization: Bearer {token}' {web}/1.0/hosting/web/{name}/email\n"
        f"The demo operator [bold]{operator}[/bold] (password {operator_password}) also reaches {web}/operator",
        highlight=False,
    )


# --- hostings ----------------------------------------------------------------------------


def _hosting_dict(hosting: Any) -> dict[str, Any]:
    value = asdict(hosting)
    value["state"] = hosting.state.value
    return value


@hosting_app.command("add")
def hosting_add(
    ctx: typer.Context,
    name: str,
    owner: Annotated[str, typer.Option(help="Owner's contact e-mail address.")],
    uid: Annotated[int | None, typer.Option(help="Unix uid whose sendmail calls belong to this hosting.")] = None,
    plan: Annotated[str | None, typer.Option(help="Plan name (default: control.default_plan).")] = None,
    smtp_password: Annotated[str | None, typer.Option(help="Password for SMTP AUTH (login = hosting name).")] = None,
) -> None:
    """Create a hosting."""
    plan = _check_plan(ctx, plan or _settings(ctx).control.default_plan)
    with _store(ctx, write=True) as connection:
        try:
            hosting = hosting_store.add_hosting(connection, name, owner, uid=uid, plan=plan, smtp_password=smtp_password)
        except hosting_store.HostingError as error:
            _fail(str(error))
    out.print(f"hosting {hosting.name} created (id {hosting.id})")


@hosting_app.command("list")
def hosting_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List hostings."""
    with _store(ctx) as connection:
        found = hosting_store.list_hostings(connection)
    if as_json:
        _print_json([_hosting_dict(h) for h in found])
        return
    table = Table("name", "owner", "uid", "plan", "state", "SMTP AUTH")
    for h in found:
        table.add_row(h.name, h.owner_email, "" if h.uid is None else str(h.uid), h.plan, h.state.value, "yes" if h.has_smtp_password else "no")
    out.print(table)


@hosting_app.command("show")
def hosting_show(ctx: typer.Context, name: str, as_json: JsonOption = False) -> None:
    """Show one hosting and its queue counts."""
    with _store(ctx) as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        if hosting is None:
            _fail(f"no hosting named {name!r}")
        counts = store_log.status_counts(connection, hosting.id)
        settings = _settings(ctx)
        plan, now, zone = settings.plan(hosting.plan), time.time(), ZoneInfo(settings.timezone)
        room = activity.quota_room(connection, hosting.id, plan, now, zone)
        sent_hour = activity.totals_since(connection, hosting.id, hour_window_start(now))["dispatched"]
        sent_today = activity.totals_since(connection, hosting.id, int(day_start(now, zone) // 60))["dispatched"]
    quota = {"last_hour": sent_hour, "hourly": plan.hourly, "today": sent_today, "max_per_day": plan.max_per_day}
    if room.count == 0:
        quota["waiting_until"] = _when(room.until)
    value = _hosting_dict(hosting) | {"recipients": counts, "sending": quota}
    if as_json:
        _print_json(value)
        return
    table = Table(show_header=False)
    for key, item in value.items():
        table.add_row(key, ", ".join(f"{k}: {v}" for k, v in item.items()) if isinstance(item, dict) else str(item))
    out.print(table)


@hosting_app.command("set")
def hosting_set(
    ctx: typer.Context,
    name: str,
    owner: Annotated[str | None, typer.Option(help="New owner contact address.")] = None,
    uid: Annotated[int | None, typer.Option(help="New Unix uid.")] = None,
    no_uid: Annotated[bool, typer.Option("--no-uid", help="Remove the Unix uid.")] = False,
    plan: Annotated[str | None, typer.Option(help="New plan (one of the configured plans).")] = None,
    smtp_password: Annotated[str | None, typer.Option(help="New SMTP password ('' removes SMTP AUTH).")] = None,
    report_to: Annotated[
        str | None, typer.Option("--report-to", help="Where error reports go ('' sends them to the owner).")
    ] = None,
    language: Annotated[str | None, typer.Option(help="Language of reports and notices: es, en or fr.")] = None,
) -> None:
    """Change a hosting."""
    if plan is not None:
        _check_plan(ctx, plan)
    with _store(ctx, write=True) as connection:
        try:
            if plan is not None:  # recorded in the hosting's history, like a state change
                change_plan(connection, name, plan, Actor.OPERATOR, time.time(), reason="changed with scriptmail hosting set")
            hosting = hosting_store.update_hosting(
                connection, name, owner_email=owner, uid=uid, clear_uid=no_uid, smtp_password=smtp_password,
                report_to=report_to, language=language,
            )  # fmt: skip
        except hosting_store.HostingError as error:
            _fail(str(error))
    out.print(f"hosting {hosting.name} updated")


def _check_plan(ctx: typer.Context, plan: str) -> str:
    plans = _settings(ctx).plans
    if plan not in plans:
        _fail(f"no plan named {plan!r}; configured plans: {', '.join(sorted(plans))}")
    return plan


# --- sending controls --------------------------------------------------------------------

ReasonOption = Annotated[str, typer.Option(help="Why, for the hosting's state history.")]


def _apply(ctx: typer.Context, name: str, action: Action, reason: str, target: HostingState | None = None) -> Change:
    with _store(ctx, write=True) as connection:
        try:
            return change_state(connection, name, action, Actor.OPERATOR, time.time(), reason=reason, target=target)
        except (TransitionNotAllowed, hosting_store.HostingError) as refused:
            _fail(f"{name}: {refused}")


def _settle(change: Change) -> None:
    """After a change that stops sending, wait until every delivery agent has seen it."""
    time.sleep(change.settle_seconds)


@hosting_app.command("block")
def hosting_block(ctx: typer.Context, name: str, reason: ReasonOption = "blocked by the operator") -> None:
    """Stop sending: waiting and new mail is held (72 h), nothing is deleted."""
    change = _apply(ctx, name, Action.BLOCK, reason)
    _settle(change)
    out.print(f"{name}: {change.before} -> {change.after}; {change.held} recipient(s) held")


@hosting_app.command("unblock")
def hosting_unblock(ctx: typer.Context, name: str, reason: ReasonOption = "unblocked by the operator") -> None:
    """Resume sending: held mail goes back into the queue."""
    change = _apply(ctx, name, Action.UNBLOCK, reason)
    out.print(f"{name}: {change.before} -> {change.after}; {change.released} recipient(s) back in the queue")


@hosting_app.command("purge")
def hosting_purge(
    ctx: typer.Context,
    name: str,
    reason: ReasonOption = "purged by the operator",
    wait: Annotated[bool, typer.Option(help="Wait until the purge has finished (else a running daemon does it).")] = True,
) -> None:
    """Delete every held or waiting recipient of a blocked hosting, then let it send again."""
    started = time.time()
    change = _apply(ctx, name, Action.PURGE, reason)
    if not wait:
        out.print(f"{name}: {change.before} -> purging; the scheduler of a running scriptmail finishes the purge")
        return
    engine = open_engine(_settings(ctx).database_url, pool_size=1)

    def run(operation):
        with for_writing(engine).begin() as connection:
            return operation(connection)

    try:
        # A running scheduler takes the purge within a second; its writer interleaves the
        # batches with intake. With no scriptmail running, this command purges by itself.
        deadline = time.monotonic() + PURGE_POLL * 2.5
        while time.monotonic() < deadline and not _purge_taken(engine, name):
            time.sleep(0.1)
        owner = f"cli:{os.uname().nodename}:{os.getpid()}"
        result = None if _purge_taken(engine, name) else run_purge(run, name, owner)
        while result is None:
            with engine.connect() as connection:
                hosting = hosting_store.find_hosting(connection, name=name)
                done_by = history(connection, name, limit=1)
            if hosting is None or hosting.state is not HostingState.PURGING:
                what = done_by[0]["reason"] if done_by else "purged"
                out.print(f"{name}: {change.before} -> purging -> {hosting.state if hosting else '?'}; {what} in {time.time() - started:.2f} s (by the scheduler)")
                return
            time.sleep(0.2)
            if not _purge_taken(engine, name):  # the scheduler stopped half-way: finish here
                result = run_purge(run, name, owner)
    finally:
        engine.dispose()
    purged, done = result
    out.print(f"{name}: {change.before} -> purging -> {done.after}; {purged} recipient(s) purged in {time.time() - started:.2f} s")


def _purge_taken(engine, name: str) -> bool:
    with engine.connect() as connection:
        return leases.holder(connection, purge_lease(name), time.time()) is not None


@hosting_app.command("state")
def hosting_state(
    ctx: typer.Context,
    name: str,
    state: Annotated[HostingState, typer.Argument(help="The state to force.")],
    reason: ReasonOption = "set by the operator",
) -> None:
    """Force a state (operator): e.g. lift a spam block without a purge."""
    change = _apply(ctx, name, Action.SET, reason, target=state)
    _settle(change)
    out.print(f"{name}: {change.before} -> {change.after}; {change.held} held, {change.released} back in the queue")


@hosting_app.command("history")
def hosting_history(ctx: typer.Context, name: str, as_json: JsonOption = False) -> None:
    """Every state change of a hosting: when, who, from, to, why."""
    with _store(ctx) as connection:
        if hosting_store.find_hosting(connection, name=name) is None:
            _fail(f"no hosting named {name!r}")
        rows = history(connection, name)
    if as_json:
        _print_json(rows)
        return
    table = Table("when", "who", "action", "from", "to", "why", title=f"{name}: state history")
    for row in rows:
        table.add_row(_when(row["at"]), row["actor"], row["action"], row["from_state"], row["to_state"], row["reason"])
    out.print(table)


# --- queue and log -----------------------------------------------------------------------


def _recipient_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table("id", "queue id", "hosting", "received", "sender", "recipient", "status", "tries", "next try", "last reply", title=title)
    for row in rows:
        reply = f"{row['last_code'] or ''} {row['last_text']}".strip()
        waiting = row["status"] in (RecipientStatus.QUEUED, RecipientStatus.DEFERRED)
        table.add_row(
            str(row["id"]),
            str(row["queue_id"]),
            row["hosting"],
            _when(row["received_at"]),
            row["sender"],
            row["recipient"],
            row["status"],
            str(row["attempts"]),
            _when(row["next_attempt_at"]) if waiting else "",
            reply[:80],
        )
    return table


@app.command()
def queue(
    ctx: typer.Context,
    hosting: Annotated[str | None, typer.Option(help="Only this hosting.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    held: Annotated[bool, typer.Option("--held", help="Only mail held because its hosting does not send.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Recipients not yet delivered, like mailq."""
    settings = _settings(ctx)
    with _store(ctx) as connection:
        rows = store_log.queued(connection, hosting=hosting, limit=limit, held_only=held)
        rows = store_log.explain_waits(connection, rows, settings.plan, time.time(), ZoneInfo(settings.timezone))
    if as_json:
        _print_json(rows)
        return
    out.print(_recipient_table(rows, f"{len(rows)} recipient(s) {'held' if held else 'in the queue'}"))


@app.command("stats")
def stats_(
    ctx: typer.Context,
    name: str,
    bounces: Annotated[int, typer.Option(min=1, max=stats.MAX_BOUNCES, help="Bounces to list, newest first.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many of the newest bounces (pagination).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """A hosting's counters (the reference's sent, sentToday, maxPerDay, bounce), volumes, bounces, scripts."""
    settings = _settings(ctx)
    now, zone = time.time(), ZoneInfo(settings.timezone)
    with _store(ctx) as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        if hosting is None:
            _fail(f"no hosting named {name!r}")
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
        _print_json(value)
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
        errors.add_row(_when(row["date"]), row["to"], row["status"], f"{row['code'] or ''} {row['message']}"[:120])
    out.print(errors)
    scripts = Table("script", "messages", "recipients", "last", title="originating scripts")
    for row in value["scripts"]:
        scripts.add_row(row["script"] or "(none)", str(row["messages"]), str(row["recipients"]), _when(row["last_at"]))
    out.print(scripts)


log_app = typer.Typer(help="The message log: one row per recipient.")
app.add_typer(log_app, name="log")


def _moment(ctx: typer.Context, text: str | None, option: str) -> float | None:
    """YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] in the platform's time zone, as UTC seconds."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{option} {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    return (moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(_settings(ctx).timezone))).timestamp()


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
    with _store(ctx) as connection:
        rows = store_log.recent(connection, filters, limit=limit)
    if as_json:
        _print_json(rows)
        return
    out.print(_recipient_table(rows, f"latest {len(rows)} recipient(s)"))


@log_app.command("show")
def log_show(ctx: typer.Context, recipient_id: Annotated[int, typer.Argument(metavar="ID", help="The recipient's id (first column of `log`).")], as_json: JsonOption = False) -> None:
    """One recipient in full: its message, every delivery attempt, and reports that came back."""
    with _store(ctx) as connection:
        found = store_log.detail(connection, recipient_id)
    if found is None:
        _fail(f"no recipient with id {recipient_id}")
    if as_json:
        _print_json(found)
        return
    table = Table(show_header=False, title=f"recipient {recipient_id}")
    for key, value in found.items():
        if key not in ("attempts", "reports"):
            table.add_row(key, _when(value) if key.endswith("_at") and value else str(value))
    out.print(table)
    attempts_table = Table("when", "node", "server", "code", "reply", "seconds", title="attempts")
    for attempt in found["attempts"]:
        attempts_table.add_row(
            _when(attempt["at"]), attempt["node"], attempt["mx_host"], str(attempt["code"] or ""), attempt["text"][:120], f"{attempt['duration']:.2f}"
        )
    out.print(attempts_table)
    if found["reports"]:
        reports_table = Table("when", "kind", "from", "summary", title="reports that came back")
        for report in found["reports"]:
            reports_table.add_row(_when(report["received_at"]), report["kind"], report["client"], report["summary"][:120])
        out.print(reports_table)


DateOption = Annotated[str | None, typer.Option("--date", help="The day reported on, YYYY-MM-DD (default: yesterday).")]


def _report_day(ctx: typer.Context, text: str | None) -> date:
    if text is None:
        return datetime.now(ZoneInfo(_settings(ctx).timezone)).date() - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"--date {text!r}: use YYYY-MM-DD")


@report_app.command("preview")
def report_preview(ctx: typer.Context, name: str, day: DateOption = None, raw: Annotated[bool, typer.Option(help="Print the whole message.")] = False) -> None:
    """Print the report a hosting gets (or would get) for a day, without sending it."""
    settings = _settings(ctx)
    when = _report_day(ctx, day)
    with _store(ctx) as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        if hosting is None:
            _fail(f"no hosting named {name!r}")
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
    settings = _settings(ctx)
    when = _report_day(ctx, day)
    with _store(ctx, write=True) as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        if hosting is None:
            _fail(f"no hosting named {name!r}")
        queue_id = daily_reports.send(connection, settings, hosting.id, when, time.time(), force=True)
    if queue_id is None:
        out.print(f"{name}: no failures on {when}; nothing to send")
        return
    out.print(f"{name}: report for {when} queued as {queue_id} to {hosting.report_recipient}")


def _password_for(prompt: bool) -> tuple[str, bool]:
    """A password typed twice (when asked and on a terminal), else a generated one to print once."""
    if prompt and sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True), False
    return accounts.new_password(), True


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    email: str,
    operator: Annotated[bool, typer.Option("--operator", help="May see and change every hosting.")] = False,
    hosting: Annotated[list[str] | None, typer.Option("--hosting", help="A hosting this customer owns (repeatable).")] = None,
    language: Annotated[str, typer.Option(help="es, en or fr.")] = "en",
    ask: Annotated[bool, typer.Option("--ask", help="Type the password instead of generating one.")] = False,
) -> None:
    """Create a customer (or operator) account; a generated password is printed once."""
    password, generated = _password_for(ask)
    with _store(ctx, write=True) as connection:
        try:
            user = accounts.add_user(connection, email, password, operator=operator, language=language)
            for name in hosting or []:
                accounts.grant(connection, user, name)
        except accounts.AccountError as error:
            _fail(str(error))
    role = "operator" if user.operator else "customer"
    out.print(f"{role} {user.email} created" + (f"; password (shown once): {password}" if generated else ""), highlight=False)


@user_app.command("password")
def user_password(ctx: typer.Context, email: str, ask: Annotated[bool, typer.Option("--ask", help="Type the new password.")] = False) -> None:
    """Give a user a new password (generated and printed once, unless --ask)."""
    password, generated = _password_for(ask)
    with _store(ctx, write=True) as connection:
        try:
            accounts.set_password(connection, email, password)
        except accounts.AccountError as error:
            _fail(str(error))
    out.print(f"password of {email} changed" + (f"; new password (shown once): {password}" if generated else ""), highlight=False)


@user_app.command("grant")
def user_grant(ctx: typer.Context, email: str, hosting: list[str]) -> None:
    """Let a customer see and control more hostings."""
    with _store(ctx, write=True) as connection:
        user = accounts.find_user(connection, email=email)
        if user is None:
            _fail(f"no user {email!r}")
        try:
            for name in hosting:
                accounts.grant(connection, user, name)
        except accounts.AccountError as error:
            _fail(str(error))
    out.print(f"{email} now owns {', '.join(hosting)}")


@token_app.command("create")
def token_create(ctx: typer.Context, email: str, label: Annotated[str, typer.Option(help="What the token is for.")] = "") -> None:
    """Create an API token for a user; it is printed once and never stored."""
    with _store(ctx, write=True) as connection:
        user = accounts.find_user(connection, email=email)
        if user is None:
            _fail(f"no user {email!r}")
        token_id, token = accounts.create_token(connection, user, label)
    out.print(f"token {token_id} for {email} (shown once): {token}", highlight=False)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke an API token at once."""
    with _store(ctx, write=True) as connection:
        try:
            accounts.revoke_token(connection, token_id)
        except accounts.AccountError as error:
            _fail(str(error))
    out.print(f"token {token_id} revoked")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the schema to the current version (also done at every start)."""
    with _store(ctx):
        pass
    out.print(f"database {_safe_url(_settings(ctx).database_url)} is up to date")


def main() -> None:
    app()
