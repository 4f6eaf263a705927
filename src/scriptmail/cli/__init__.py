"""The `scriptmail` command: thin Typer commands over the parts, one module per command group;
Rich tables for people, JSON for scripts."""

from __future__ import annotations

# Importing a group's module registers its commands on the root app.
from scriptmail.cli import db, doctor, domain, hosting, install, log, queue, report, serve, stats, suppression, users, webhook  # noqa: F401
from scriptmail.cli import sites as sites  # noqa: F401
from scriptmail.cli.root import app


def main() -> None:
    app()
