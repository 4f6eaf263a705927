"""The root `scriptmail` command and what every command group shares: settings, the store, output."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from scriptmail.config import ConfigError, Settings, load_settings
from scriptmail.store import activity, bus
from scriptmail.store.engine import for_writing, open_engine
from scriptmail.store.migrate import upgrade

EX_OSERR = 71
EX_TEMPFAIL = 75
EX_CONFIG = 78

app = typer.Typer(
    help="scriptmail: the outbound mail gateway of a shared web-hosting platform.", no_args_is_help=True, add_completion=False
)

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


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.obj


@contextmanager
def open_store(ctx: typer.Context, write: bool = False) -> Iterator[Connection]:
    """A migrated store; a database that cannot be reached is a clean exit 75, not a traceback."""
    url = settings_of(ctx).database_url
    engine = open_engine(url, pool_size=1)
    try:
        upgrade(engine)
        with for_writing(engine).begin() if write else engine.connect() as connection:
            yield connection
            announced = bus.take_announced(connection)
        if announced:  # SQLite: tell the running processes what this command changed
            bus.open_bus(url).send(announced)
    except OperationalError as error:
        err.print(f"[red]database unavailable: {str(error.orig or error).splitlines()[0]}[/red]", highlight=False)
        raise typer.Exit(EX_TEMPFAIL) from None
    finally:
        engine.dispose()


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(code)


def when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else ""


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
