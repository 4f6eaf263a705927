"""`scriptmail hosting ...`: create and change hostings, and block, unblock, purge or force their state."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import asdict
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from scriptmail.cli.root import JsonOption, app, fail, open_store, out, print_json, settings_of, when
from scriptmail.control.quota import day_start, hour_window_start
from scriptmail.control.states import Action, Actor, TransitionNotAllowed
from scriptmail.model import HostingState
from scriptmail.scheduler.jobs import PURGE_POLL
from scriptmail.scheduler.purge import lease_name as purge_lease
from scriptmail.scheduler.purge import run_purge
from scriptmail.store import activity, audit, bus, leases, nodes, provisioning
from scriptmail.store import hostings as hosting_store
from scriptmail.store import log as store_log
from scriptmail.store.engine import for_writing, open_engine
from scriptmail.store.hosting_control import Change, change_plan, change_state, history

hosting_app = typer.Typer(help="Manage hostings (the accounts whose scripts send mail).", no_args_is_help=True)
app.add_typer(hosting_app, name="hosting")


def _hosting_dict(hosting: Any) -> dict[str, Any]:
    value = asdict(hosting)
    value["state"] = hosting.state.value
    return value


# The SMTP password never travels on the command line (where `ps` shows it): read from stdin, or
# generated and printed once.
StdinOption = Annotated[
    bool, typer.Option("--smtp-password-stdin", help="Read the SMTP password (login = hosting name) from the first line of stdin.")
]
GenerateOption = Annotated[
    bool, typer.Option("--generate-smtp-password", help="Generate an SMTP password and print it once.")
]


def _smtp_password(from_stdin: bool, generate: bool) -> tuple[str | None, bool]:
    """The new SMTP password (or None for none given), and whether it was generated."""
    if from_stdin and generate:
        fail("--smtp-password-stdin and --generate-smtp-password exclude each other")
    if generate:
        return hosting_store.new_smtp_password(), True
    if not from_stdin:
        return None, False
    line = sys.stdin.readline().rstrip("\r\n")
    try:
        return hosting_store.check_smtp_password(line), False
    except hosting_store.HostingError as error:
        fail(str(error))


def _record(connection, action: str, name: str, before: Any = None, after: Any = None) -> None:
    audit.record(connection, audit.Actor.command(), action, name, time.time(), before=before, after=after)


@hosting_app.command("add")
def hosting_add(
    ctx: typer.Context,
    name: str,
    owner: Annotated[str, typer.Option(help="Owner's contact e-mail address.")],
    uid: Annotated[int | None, typer.Option(help="Unix uid whose sendmail calls belong to this hosting.")] = None,
    plan: Annotated[str | None, typer.Option(help="Plan name (default: control.default_plan).")] = None,
    smtp_password_stdin: StdinOption = False,
    generate_smtp_password: GenerateOption = False,
) -> None:
    """Create a hosting."""
    plan = _check_plan(ctx, plan or settings_of(ctx).control.default_plan)
    password, generated = _smtp_password(smtp_password_stdin, generate_smtp_password)
    with open_store(ctx, write=True) as connection:
        try:
            hosting = hosting_store.add_hosting(connection, name, owner, uid=uid, plan=plan, smtp_password=password)
        except hosting_store.HostingError as error:
            fail(str(error))
        _record(connection, "hosting.create", name, after=_hosting_dict(hosting))
    out.print(f"hosting {hosting.name} created (id {hosting.id})" + (f"; SMTP password (shown once): {password}" if generated else ""),
              highlight=False)  # fmt: skip


@hosting_app.command("list")
def hosting_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List hostings."""
    with open_store(ctx) as connection:
        found = hosting_store.list_hostings(connection)
    if as_json:
        print_json([_hosting_dict(h) for h in found])
        return
    table = Table("name", "owner", "uid", "plan", "state", "SMTP AUTH")
    for h in found:
        table.add_row(h.name, h.owner_email, "" if h.uid is None else str(h.uid), h.plan, h.state.value, "yes" if h.has_smtp_password else "no")
    out.print(table)


@hosting_app.command("show")
def hosting_show(ctx: typer.Context, name: str, as_json: JsonOption = False) -> None:
    """Show one hosting and its queue counts."""
    with open_store(ctx) as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        if hosting is None:
            fail(f"no hosting named {name!r}")
        counts = store_log.status_counts(connection, hosting.id)
        settings = settings_of(ctx)
        plan, now, zone = settings.plan(hosting.plan), time.time(), ZoneInfo(settings.timezone)
        room = activity.quota_room(connection, hosting.id, plan, now, zone)
        sent_hour = activity.totals_since(connection, hosting.id, hour_window_start(now))["dispatched"]
        sent_today = activity.totals_since(connection, hosting.id, int(day_start(now, zone) // 60))["dispatched"]
    quota = {"last_hour": sent_hour, "hourly": plan.hourly, "today": sent_today, "max_per_day": plan.max_per_day}
    if room.count == 0:
        quota["waiting_until"] = when(room.until)
    value = _hosting_dict(hosting) | {"recipients": counts, "sending": quota}
    if as_json:
        print_json(value)
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
    smtp_password_stdin: StdinOption = False,
    generate_smtp_password: GenerateOption = False,
    no_smtp_password: Annotated[bool, typer.Option("--no-smtp-password", help="Remove SMTP AUTH.")] = False,
    report_to: Annotated[
        str | None, typer.Option("--report-to", help="Where error reports go ('' sends them to the owner).")
    ] = None,
    language: Annotated[str | None, typer.Option(help="Language of reports and notices: es, en, fr, de, it, pt or pl.")] = None,
    notices: Annotated[
        bool | None, typer.Option("--notices/--no-notices", help="Notify senders of failed mail (DSN); on by default.")
    ] = None,
) -> None:
    """Change a hosting."""
    if plan is not None:
        _check_plan(ctx, plan)
    password, generated = _smtp_password(smtp_password_stdin, generate_smtp_password)
    if no_smtp_password:
        if password is not None:
            fail("--no-smtp-password excludes a new SMTP password")
        password = ""
    with open_store(ctx, write=True) as connection:
        before = hosting_store.find_hosting(connection, name=name)
        try:
            if plan is not None:  # recorded in the hosting's history, like a state change
                change_plan(connection, name, plan, Actor.OPERATOR, time.time(), reason="changed with scriptmail hosting set")
            hosting = hosting_store.update_hosting(
                connection, name, owner_email=owner, uid=uid, clear_uid=no_uid, smtp_password=password,
                report_to=report_to, language=language, notices=notices,
            )  # fmt: skip
        except hosting_store.HostingError as error:
            fail(str(error))
        _record(connection, "hosting.update", name, before=_hosting_dict(before), after=_hosting_dict(hosting))
    out.print(f"hosting {hosting.name} updated" + (f"; SMTP password (shown once): {password}" if generated else ""), highlight=False)


@hosting_app.command("delete")
def hosting_delete(
    ctx: typer.Context,
    name: str,
    purge: Annotated[bool, typer.Option("--purge", help="Purge its queued and held mail too (else such mail refuses the delete).")] = False,
) -> None:
    """Delete a hosting: it stops sending at once; its log stays readable until `control.log_days` prunes it."""
    with open_store(ctx, write=True) as connection:
        before = hosting_store.find_hosting(connection, name=name)
        try:
            tombstone, purged = provisioning.delete_hosting(connection, name, time.time(), purge=purge)
        except hosting_store.HostingError as error:
            fail(str(error))
        _record(connection, "hosting.delete", name, before=_hosting_dict(before), after={"name": tombstone.name, "purged": purged})
    out.print(f"hosting {name} deleted; {purged} recipient(s) purged; its log is kept as {tombstone.name}", highlight=False)


def _check_plan(ctx: typer.Context, plan: str) -> str:
    plans = settings_of(ctx).plans
    if plan not in plans:
        fail(f"no plan named {plan!r}; configured plans: {', '.join(sorted(plans))}")
    return plan


# --- sending controls --------------------------------------------------------------------

ReasonOption = Annotated[str, typer.Option(help="Why, for the hosting's state history.")]


def _apply(ctx: typer.Context, name: str, action: Action, reason: str, target: HostingState | None = None) -> Change:
    with open_store(ctx, write=True) as connection:
        try:
            return change_state(connection, name, action, Actor.OPERATOR, time.time(), reason=reason, target=target)
        except (TransitionNotAllowed, hosting_store.HostingError) as refused:
            fail(f"{name}: {refused}")


def _settle(ctx: typer.Context, change: Change) -> None:
    """After a change that stops sending, wait until every running node has acted on it."""
    if not change.stops_sending:
        return
    url = settings_of(ctx).database_url

    async def fence() -> None:
        channel = bus.open_bus(url)
        try:
            await channel.start()
        except Exception:  # noqa: BLE001 - no push: the agents' own reread is the bound
            await asyncio.sleep(change.settle_seconds)
            return
        try:
            with open_store(ctx) as connection:
                running = nodes.live(connection, time.time())
            await channel.fence(running, change.settle_seconds)
        finally:
            await channel.close()

    asyncio.run(fence())


@hosting_app.command("block")
def hosting_block(ctx: typer.Context, name: str, reason: ReasonOption = "blocked by the operator") -> None:
    """Stop sending: waiting and new mail is held (72 h), nothing is deleted."""
    change = _apply(ctx, name, Action.BLOCK, reason)
    _settle(ctx, change)
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
    engine = open_engine(settings_of(ctx).database_url, pool_size=1)

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
    _settle(ctx, change)
    out.print(f"{name}: {change.before} -> {change.after}; {change.held} held, {change.released} back in the queue")


@hosting_app.command("history")
def hosting_history(ctx: typer.Context, name: str, as_json: JsonOption = False) -> None:
    """Every state change of a hosting: when, who, from, to, why."""
    with open_store(ctx) as connection:
        if hosting_store.find_hosting(connection, name=name) is None:
            fail(f"no hosting named {name!r}")
        rows = history(connection, name)
    if as_json:
        print_json(rows)
        return
    table = Table("when", "who", "action", "from", "to", "why", title=f"{name}: state history")
    for row in rows:
        table.add_row(when(row["at"]), row["actor"], row["action"], row["from_state"], row["to_state"], row["reason"])
    out.print(table)
