"""`scriptmail db ...`: the store's schema."""

from __future__ import annotations

import typer

from scriptmail.cli.root import app, open_store, out, settings_of
from scriptmail.cli.serve import safe_url

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the schema to the current version (also done at every start)."""
    with open_store(ctx):
        pass
    out.print(f"database {safe_url(settings_of(ctx).database_url)} is up to date")
