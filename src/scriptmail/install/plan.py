"""What an installation consists of, as plain values: directories, files and the sendmail links,
each with its owner and mode. Nothing here touches the disk."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import PurePosixPath

from pydantic import ValidationError

from scriptmail.config import IntakeSettings
from scriptmail.install.layout import (
    CONFIG_DIR,
    CONFIG_FILE,
    RUNTIME_DIR,
    SENDMAIL_CONFIG_FILE,
    SPOOL_DIR,
    STATE_DIR,
    UNIT_DIR,
    Layout,
    LayoutError,
)
from scriptmail.install.units import unit_files

ROOT = "root"
DEFAULT_DATABASE_URL = f"sqlite:///{STATE_DIR}/scriptmail.db"
DEFAULT_LISTEN = "127.0.0.1:587"
DEFAULT_SOCKET = RUNTIME_DIR / "intake.sock"
DEFAULT_MAILDROP = SPOOL_DIR / "maildrop"
DROP_MODE, PRIVATE_MODE = 0o1733, 0o700  # as the maildrop part lays it out (intake/maildrop.py)

# The sendmail command's names, as Debian's MTAs provide them: (link, alternative name).
SENDMAIL_LINKS = (
    (PurePosixPath("/usr/sbin/sendmail"), "sendmail"),
    (PurePosixPath("/usr/bin/mailq"), "mailq"),
    (PurePosixPath("/usr/bin/newaliases"), "newaliases"),
)
ALTERNATIVE_PRIORITY = 25


@dataclass(frozen=True)
class Directory:
    path: PurePosixPath
    owner: str
    group: str
    mode: int


@dataclass(frozen=True)
class File:
    path: PurePosixPath
    content: str
    owner: str
    group: str
    mode: int
    keep: bool = False  # an existing file is the operator's: only its owner and mode are put right


@dataclass(frozen=True)
class Plan:
    layout: Layout
    directories: tuple[Directory, ...]
    files: tuple[File, ...]
    links: tuple[tuple[PurePosixPath, str], ...]


def layout_from_config(text: str | None, user: str, bin_dir: PurePosixPath, hostname: str) -> Layout:
    """The layout an existing scriptmail.toml describes (its paths win), or the defaults for a new one.

    Only the keys the installation needs are read, and the environment is not: the units run without it.
    """
    if text is None:
        return Layout(
            user, bin_dir, hostname, DEFAULT_DATABASE_URL, DEFAULT_SOCKET, DEFAULT_MAILDROP, 10 * 1024 * 1024, DEFAULT_LISTEN
        )
    try:
        data = tomllib.loads(text)
        intake = IntakeSettings(**data.get("intake", {}))
    except tomllib.TOMLDecodeError as error:
        raise LayoutError(f"{CONFIG_FILE} is not valid TOML: {error}") from None
    except (ValidationError, TypeError) as error:
        raise LayoutError(f"{CONFIG_FILE} [intake]: {error}") from None
    database_url = data.get("database_url", DEFAULT_DATABASE_URL)
    name = data.get("hostname", hostname)
    if not isinstance(database_url, str) or not isinstance(name, str):
        raise LayoutError(f"{CONFIG_FILE}: database_url and hostname must be strings")
    return Layout(
        user, bin_dir, name, database_url, PurePosixPath(intake.socket), PurePosixPath(intake.maildrop),
        intake.max_message_size, intake.listen,
    )  # fmt: skip


def _toml_string(value: object) -> str:
    return json.dumps(str(value))  # a JSON string is a TOML basic string for these values


def config_text(layout: Layout) -> str:
    """A first scriptmail.toml: a working single-server set-up, with what to change next."""
    return f"""# scriptmail's configuration; every key is described in README "Configuration".
# Readable by root and the {layout.user} group only: it may hold the database password.
# The sendmail command reads {SENDMAIL_CONFIG_FILE} instead, which `scriptmail install`
# writes from the [intake] keys below: run it again after changing socket, maildrop or max_message_size.
database_url = {_toml_string(layout.database_url)}
hostname = {_toml_string(layout.hostname)}

[intake]
listen = {_toml_string(layout.listen)}
socket = {_toml_string(layout.socket)}
maildrop = {_toml_string(layout.maildrop)}
max_message_size = {layout.max_message_size}
# A real certificate for STARTTLS (re-read by itself when it is renewed):
# tls_cert = "/etc/letsencrypt/live/{layout.hostname}/fullchain.pem"
# tls_key = "/etc/letsencrypt/live/{layout.hostname}/privkey.pem"

[delivery]
# nameservers = ["127.0.0.1"]
"""


def sendmail_config_text(layout: Layout) -> str:
    """The world-readable file the sendmail command reads: only what it needs, no secret."""
    return f"""# Written by `scriptmail install` from {CONFIG_FILE}; a second run rewrites it.
# The sendmail command (every web user) reads it: it holds no secret.
[intake]
socket = {_toml_string(layout.socket)}
maildrop = {_toml_string(layout.maildrop)}
max_message_size = {layout.max_message_size}
"""


def plan_install(layout: Layout) -> Plan:
    """Every directory and file of the installation, in the order they are made."""
    user = layout.user
    directories = [Directory(CONFIG_DIR, ROOT, ROOT, 0o755), Directory(STATE_DIR, user, user, 0o750)]
    sqlite_dir = layout.sqlite_dir
    if sqlite_dir is not None and sqlite_dir != STATE_DIR:
        directories.append(Directory(sqlite_dir, user, user, 0o750))
    if layout.maildrop.parent == SPOOL_DIR:
        directories.append(Directory(SPOOL_DIR, ROOT, ROOT, 0o755))
    directories.append(Directory(layout.maildrop, user, user, 0o755))
    for name, mode in (("tmp", DROP_MODE), ("new", DROP_MODE), ("cur", PRIVATE_MODE), ("bad", PRIVATE_MODE)):
        directories.append(Directory(layout.maildrop / name, user, user, mode))
    # The socket's directory must be searchable by the web users; systemd makes /run/scriptmail
    # again at every start (RuntimeDirectory), this one serves until then.
    directories.append(Directory(layout.socket.parent, user, user, 0o755))
    files = [
        File(CONFIG_FILE, config_text(layout), ROOT, user, 0o640, keep=True),
        File(SENDMAIL_CONFIG_FILE, sendmail_config_text(layout), ROOT, ROOT, 0o644),
    ]
    files += [File(UNIT_DIR / name, text, ROOT, ROOT, 0o644) for name, text in unit_files(layout).items()]
    return Plan(layout, tuple(directories), tuple(files), SENDMAIL_LINKS)
