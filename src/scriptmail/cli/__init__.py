"""The `scriptmail` command: thin Typer commands over the parts, one module per command group;
Rich tables for people, JSON for scripts.

A command imports only its own group's module: `scriptmail hosting list` does not load the web
application, the installer or the doctor's probes (CLI start-up is most of a command's cost).
Every group is loaded when no known command is named (plain `--help`), and for whoever imports
`app` from here.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# The first word of each command, and the module whose import registers it on the root app.
COMMANDS = {
    "db": "db",
    "doctor": "doctor",
    "domain": "domain",
    "hosting": "hosting",
    "install": "install",
    "log": "log",
    "queue": "queue",
    "report": "report",
    "serve": "serve",
    "stats": "stats",
    "suppression": "suppression",
    "user": "users",
    "token": "users",
    "webhook": "webhook",
}
_ROOT_OPTIONS_WITH_VALUE = ("--config", "-c")


def command_of(argv: list[str]) -> str | None:
    """The command word: the first word that is neither an option nor the value of --config."""
    words = iter(argv)
    for word in words:
        if word in _ROOT_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def load(argv: list[str] | None = None):
    """The root app with the groups `argv` needs registered (all of them without argv)."""
    name = command_of(argv) if argv is not None else None
    for module in [COMMANDS[name]] if name in COMMANDS else sorted(set(COMMANDS.values())):
        importlib.import_module(f"scriptmail.cli.{module}")
    from scriptmail.cli.root import app

    return app


def main() -> None:
    load(sys.argv[1:])()


def __getattr__(name: str) -> Any:
    if name == "app":
        return load()
    raise AttributeError(name)
