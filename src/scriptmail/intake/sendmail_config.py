"""Where the sendmail command finds the daemon: its environment, then /etc/scriptmail, then the checkout.

PHP's default `sendmail_path`, cron and every other system program run `/usr/sbin/sendmail` with no
SCRIPTMAIL_* variable and from any directory, so on a server the command reads the `[intake]` keys
`socket`, `maildrop` and `max_message_size` from the system directory: `sendmail.toml` there if it
exists (a world-readable file holding only those keys, for when the daemon's file keeps secrets),
else `scriptmail.toml`. Per key the environment wins, then that file, then the checkout's relative
defaults (`make run`).

The command runs with the caller's rights, for many callers: whoever can write these files decides
where everyone's mail goes. So a file (and its directory) is used only if the kernel says it is owned
by root and writable by no one else, and its location is a constant: no variable or option of the
caller moves it. Stdlib only; tomllib is imported only when a file is read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scriptmail.intake.sendmail_protocol import DEFAULT_MAX_SIZE, EX_CONFIG

SYSTEM_DIR = Path("/etc/scriptmail")
COMMAND_FILE = "sendmail.toml"  # the command's own file: only the keys it needs
DAEMON_FILE = "scriptmail.toml"
KEYS = ("socket", "maildrop", "max_message_size")
MIN_SIZE = 1024  # as config.py's intake.max_message_size
MAX_FILE = 1024 * 1024


class ConfigError(Exception):
    """The command cannot tell where the daemon is; it exits with EX_CONFIG and says why."""

    code = EX_CONFIG

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Locations:
    socket: Path
    maildrop: Path
    max_size: int


def find(env: Mapping[str, str], system_dir: Path = SYSTEM_DIR, owner: int = 0) -> Locations:
    """The daemon's socket, maildrop and size limit for this call.

    `system_dir` and `owner` (the uid the files must belong to) are parameters for the tests that
    run in-process; the command itself always uses the constants.
    """
    values: dict[str, str | int] = {}
    for key in KEYS:
        name = key.upper()
        given = env.get(f"SCRIPTMAIL_{name}") or env.get(f"SCRIPTMAIL_INTAKE__{name}")
        if given:
            values[key] = given
    if len(values) < len(KEYS):
        from_file = read_system_file(system_dir, owner)
        for key, value in from_file.items():
            values.setdefault(key, value)
    size = values.get("max_message_size", DEFAULT_MAX_SIZE)
    if isinstance(size, str):
        if not size.isdigit() or int(size) < 1:
            raise ConfigError(f"invalid maximum message size {size[:40]!r} in the environment")
        size = int(size)
    return Locations(
        Path(str(values.get("socket", "var/intake.sock"))),
        Path(str(values.get("maildrop", "var/maildrop"))),
        size,
    )


def read_system_file(system_dir: Path, owner: int = 0) -> dict[str, str | int]:
    """The [intake] keys of the command's file, else of the daemon's; {} when neither exists."""
    for name, only_intake in ((COMMAND_FILE, True), (DAEMON_FILE, False)):
        path = system_dir / name
        content = _read_trusted(path, owner)
        if content is not None:
            return intake_keys(content, path, only_intake)
    return {}


def _read_trusted(path: Path, owner: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise ConfigError(
            f"cannot read {path}: make it readable by everyone, or put the [intake] keys socket, maildrop and "
            f"max_message_size in a world-readable {path.with_name(COMMAND_FILE)}"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot open {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        _check_owner(path, info, owner)
        _check_owner(path.parent, os.stat(path.parent), owner)
        content = os.read(fd, MAX_FILE + 1)
    finally:
        os.close(fd)
    if len(content) > MAX_FILE:
        raise ConfigError(f"{path} is larger than {MAX_FILE} bytes")
    return content


def _check_owner(path: Path, info: os.stat_result, owner: int) -> None:
    if info.st_uid != owner or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "root" if owner == 0 else f"uid {owner}"
        raise ConfigError(f"{path} must belong to {who} and be writable by no one else; refusing to use it")


def intake_keys(content: bytes, path: Path, only_intake: bool) -> dict[str, str | int]:
    """Check and return the three keys of `[intake]` (pure). The command's own file may hold nothing else."""
    import tomllib  # only here: most calls on a checkout or with an environment never read a file

    try:
        document = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    intake = document.get("intake", {})
    if not isinstance(intake, dict):
        raise ConfigError(f"{path}: intake must be a table")
    if only_intake:
        extra = sorted(set(document) - {"intake"}) + sorted(f"intake.{key}" for key in set(intake) - set(KEYS))
        if extra:
            raise ConfigError(f"{path}: unknown key {extra[0]} (this file holds only intake.{', intake.'.join(KEYS)})")
    found: dict[str, str | int] = {}
    for key in ("socket", "maildrop"):
        value = intake.get(key)
        if value is None:
            raise ConfigError(f"{path}: intake.{key} is not set; the command needs the daemon's absolute path")
        if not isinstance(value, str) or not value.startswith("/") or "\x00" in value:
            raise ConfigError(f"{path}: intake.{key} must be an absolute path, not {value!r:.80}")
        found[key] = value
    size = intake.get("max_message_size", DEFAULT_MAX_SIZE)
    if type(size) is not int or size < MIN_SIZE:
        raise ConfigError(f"{path}: intake.max_message_size must be an integer of at least {MIN_SIZE}, not {size!r:.40}")
    found["max_message_size"] = size
    return found
