"""`scriptmail install`: make this machine (or a staging root) a scriptmail server."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer

from scriptmail.cli.root import JsonOption, app, fail, out, print_json
from scriptmail.install.apply import Installer, InstallError
from scriptmail.install.layout import CONFIG_FILE, LayoutError, check_layout
from scriptmail.install.plan import layout_from_config, plan_install

EX_CANTCREAT = 73


@app.command("install")
def install(
    root: Annotated[
        Path | None,
        typer.Option("--root", help="Install into this staging root instead of the machine (no useradd, no systemctl)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Divert another MTA's sendmail, mailq and newaliases aside.")] = False,
    user: Annotated[str, typer.Option("--user", help="System account (and group) the gateway runs as.")] = "scriptmail",
    bin_dir: Annotated[
        Path | None,
        typer.Option("--bin-dir", help="Where `scriptmail` and `scriptmail-sendmail` are (default: beside this Python)."),
    ] = None,
    hostname: Annotated[
        str | None, typer.Option("--hostname", help="Name for a new scriptmail.toml (default: this machine's).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create the account, directories, /usr/sbin/sendmail, /etc/scriptmail and the systemd units.

    Safe to run again: it changes only what differs, and says so.
    """
    staging = root is not None
    target_root = Path(root) if root is not None else Path("/")
    if staging and not target_root.is_dir():
        fail(f"--root {target_root}: not a directory (create it first)", 2)
    if not staging and os.geteuid() != 0:
        fail("run as root, or stage the installation with --root DIR", 1)
    # A virtual environment's python and its scripts share bin/ (not resolved: the python there is a link).
    programs = PurePosixPath(os.path.abspath(bin_dir or os.path.dirname(sys.executable)))
    if not staging and not os.access(programs / "scriptmail-sendmail", os.X_OK):
        fail(f"{programs}/scriptmail-sendmail is not there: give the directory of the installed programs with --bin-dir", 1)
    config = target_root / str(CONFIG_FILE).lstrip("/")
    try:
        text = config.read_text() if config.is_file() else None
        layout = layout_from_config(text, user, programs, hostname or socket.getfqdn())
        check_layout(layout)
        changes = Installer(target_root.resolve(), staging, force).install(plan_install(layout))
    except (LayoutError, InstallError) as error:
        fail(str(error), 1)
    except OSError as error:
        fail(f"cannot install: {error}", EX_CANTCREAT)
    if as_json:
        print_json([dataclasses.asdict(change) for change in changes])
        return
    for change in changes:
        out.print(f"{change.action:<9} {change.what:<9} {change.path}  {change.detail}".rstrip(), highlight=False)
    if all(change.action in ("unchanged", "kept") for change in changes):
        out.print("nothing to change: the installation is complete")
    else:
        done = sum(change.action not in ("unchanged", "kept") for change in changes)
        out.print(f"{done} change(s) made")
    if not staging:
        out.print(
            f"next: edit {CONFIG_FILE} (hostname, listen, tls_cert), then `systemctl enable --now scriptmail` "
            "(or the scriptmail-<part> units) and `scriptmail --config /etc/scriptmail/scriptmail.toml doctor`"
        )
