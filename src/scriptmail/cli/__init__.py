"""The `scriptmail` command: thin Typer commands over the parts, one module per command group;
Rich tables for people, JSON for scripts."""

from __future__ import annotations

# Importing a group's module registers its commands on the root app.
from scriptmail.cli import db, domain, hosting, log, queue, report, serve, stats, users, webhook  # noqa: F401
from scriptmail.cli.root import app


def main() -> None:
    app()
