"""`scriptmail domain ...`: sending domains, their DKIM keys, what to publish, checks and rotation."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from scriptmail.cli.root import JsonOption, app, fail, open_store, out, print_json, settings_of, when
from scriptmail.domains import dns_check
from scriptmail.domains.keys import Algorithm
from scriptmail.domains.names import DomainNameError, display, normalise
from scriptmail.domains.provision import new_keys
from scriptmail.domains.vault import VaultError
from scriptmail.domains.view import describe, with_checks
from scriptmail.store import domains as store
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing, open_engine
from scriptmail.store.migrate import upgrade

domain_app = typer.Typer(help="Sending domains: DKIM keys, the DNS records to publish, checks.", no_args_is_help=True)
app.add_typer(domain_app, name="domain")


def _name(text: str) -> str:
    try:
        return normalise(text)
    except DomainNameError as error:
        fail(str(error), 65)


def _shown(ctx: typer.Context, name: str) -> dict[str, Any]:
    with open_store(ctx) as connection:
        found = store.find_domain(connection, name)
    if found is None:
        fail(f"no sending domain {display(name)}", 1)
    return describe(found)


def _print(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    out.print(f"{view['domain']} ({view['a_label']}) of {view['hosting']}: {view['state']}" + (f" — {view['reason']}" if view["reason"] else ""))
    out.print("Publish these TXT records:")
    for record in view["records"]:
        until = f", keep until {when(record['keep_until'])}" if record["keep_until"] else ""
        out.print(f"  [{record['role']}, {record['algorithm']}, {record['state']}{until}]")
        out.print(f"  name:  {record['name']}")
        out.print(f"  value: {record['value']}")
        out.print(f"  zone:  {record['zone']}")
    for check in ("spf", "dmarc"):
        found = view[check]
        out.print(f"{check.upper()}: {found['result']}" + (f" — {found['advice']}" if found.get("advice") else ""))
        if found.get("publish"):
            out.print(f"  publish: {found['publish']}")


@domain_app.command("add")
def domain_add(
    ctx: typer.Context,
    hosting: str,
    domain: str,
    move: Annotated[bool, typer.Option("--move", help="Take the domain from the hosting that has it (operator's decision).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a sending domain to a hosting and generate its DKIM keys (pending until DNS holds them)."""
    name = _name(domain)
    settings = settings_of(ctx)
    with open_store(ctx) as connection:
        first = not store.has_keys(connection)
    try:
        keys = new_keys(settings.domains, time.time(), create=first)
    except VaultError as error:
        fail(str(error), 78)
    with open_store(ctx, write=True) as connection:
        if hosting == hosting_store.SYSTEM_HOSTING:  # the platform's own signing domain: its hosting may not exist yet
            hosting_id = hosting_store.system_hosting_id(connection, settings.control.notify_from)
        else:
            found = hosting_store.find_hosting(connection, name=hosting)
            if found is None:
                fail(f"no hosting named {hosting}")
            hosting_id = found.id
        try:
            store.add_domain(connection, hosting_id, name, keys, time.time(), move=move)
        except (store.DomainTaken, store.DomainExists) as error:
            fail(str(error))
    _print(_shown(ctx, name), as_json)


@domain_app.command("list")
def domain_list(ctx: typer.Context, hosting: Annotated[str | None, typer.Argument()] = None, as_json: JsonOption = False) -> None:
    """Sending domains (of one hosting, or all), and the From domains seen but not set up."""
    with open_store(ctx) as connection:
        hosting_id = None
        if hosting is not None:
            found = hosting_store.find_hosting(connection, name=hosting)
            if found is None:
                fail(f"no hosting named {hosting}")
            hosting_id = found.id
        rows = store.list_domains(connection, hosting_id)
    shown = [
        {"domain": display(r["domain"]), "a_label": r["domain"], "hosting": r["hosting"], "state": r["state"], "reason": r["reason"],
         "messages": r["messages"], "checked_at": r["checked_at"]}
        for r in rows
    ]  # fmt: skip
    if as_json:
        print_json(shown)
        return
    table = Table("domain", "hosting", "state", "messages", "why")
    for row in shown:
        table.add_row(row["domain"], row["hosting"], row["state"], str(row["messages"]), row["reason"])
    out.print(table)


@domain_app.command("show")
def domain_show(ctx: typer.Context, domain: str, as_json: JsonOption = False) -> None:
    """A domain's state and the exact records to publish."""
    _print(asyncio.run(with_checks(_shown(ctx, _name(domain)), settings_of(ctx))), as_json)


@domain_app.command("check")
def domain_check(ctx: typer.Context, domain: str, as_json: JsonOption = False) -> None:
    """Look up the domain's DKIM records now (through delivery.nameservers) and record what DNS holds."""
    name = _name(domain)
    _shown(ctx, name)  # a clear error for an unknown domain
    settings = settings_of(ctx)
    engine = open_engine(settings.database_url, pool_size=1)
    writing = for_writing(engine)

    async def write(operation):
        with writing.begin() as connection:
            return operation(connection)

    try:
        upgrade(engine)
        asyncio.run(dns_check.check(engine, write, settings, time.time(), name))
    finally:
        engine.dispose()
    _print(asyncio.run(with_checks(_shown(ctx, name), settings)), as_json)


@domain_app.command("rotate")
def domain_rotate(ctx: typer.Context, domain: str, as_json: JsonOption = False) -> None:
    """Publish new keys under new dated selectors; they sign once DNS holds them, the old ones stay listed for the overlap."""
    name = _name(domain)
    with open_store(ctx) as connection:
        found = store.find_domain(connection, name)
    if found is None:
        fail(f"no sending domain {display(name)}")
    if found["state"] != "verified":
        fail(f"{display(name)} is {found['state']}: publish and verify its current key before rotating")
    signing = [Algorithm(key["algorithm"]) for key in found["keys"] if key["active"]]
    try:
        keys = new_keys(settings_of(ctx).domains, time.time(), taken=[key["selector"] for key in found["keys"]], only=signing, create=False)
    except VaultError as error:
        fail(str(error), 78)
    with open_store(ctx, write=True) as connection:
        try:
            store.rotate(connection, name, keys, time.time())
        except store.RotationRefused as error:
            fail(str(error))
    _print(_shown(ctx, name), as_json)


@domain_app.command("remove")
def domain_remove(ctx: typer.Context, domain: str, as_json: JsonOption = False) -> None:
    """Remove a sending domain and its keys (its mail is then signed by the platform's domain)."""
    name = _name(domain)
    with open_store(ctx, write=True) as connection:
        try:
            store.remove_domain(connection, name)
        except store.NoSuchDomain as error:
            fail(str(error))
    if as_json:
        print_json({"domain": display(name), "removed": True})
        return
    out.print(f"sending domain {display(name)} removed")
