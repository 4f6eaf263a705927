"""Where an installation puts things: the paths and names every step of the plan is made from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

CONFIG_DIR = PurePosixPath("/etc/scriptmail")
CONFIG_FILE = CONFIG_DIR / "scriptmail.toml"
SENDMAIL_CONFIG_FILE = CONFIG_DIR / "sendmail.toml"
STATE_DIR = PurePosixPath("/var/lib/scriptmail")
SPOOL_DIR = PurePosixPath("/var/spool/scriptmail")
RUNTIME_DIR = PurePosixPath("/run/scriptmail")
UNIT_DIR = PurePosixPath("/etc/systemd/system")

# Paths systemd hides from the units (ProtectHome, PrivateTmp), so the programs cannot live there.
_HIDDEN = (
    PurePosixPath("/home"),
    PurePosixPath("/root"),
    PurePosixPath("/run/user"),
    PurePosixPath("/tmp"),
    PurePosixPath("/var/tmp"),
)


class LayoutError(ValueError):
    """The installation cannot be made this way; the message says why and what to do."""


@dataclass(frozen=True)
class Layout:
    user: str
    bin_dir: PurePosixPath  # where `scriptmail` and `scriptmail-sendmail` are installed
    hostname: str
    database_url: str
    socket: PurePosixPath
    maildrop: PurePosixPath
    max_message_size: int
    listen: str

    @property
    def scriptmail(self) -> PurePosixPath:
        return self.bin_dir / "scriptmail"

    @property
    def sendmail(self) -> PurePosixPath:
        return self.bin_dir / "scriptmail-sendmail"

    @property
    def sqlite_dir(self) -> PurePosixPath | None:
        """The directory of a SQLite store (the service must write there), None for PostgreSQL."""
        if not self.database_url.startswith("sqlite:///"):
            return None
        return PurePosixPath(self.database_url.removeprefix("sqlite:///")).parent


def check_layout(layout: Layout) -> None:
    """Refuse what would install a broken or unsafe system; LayoutError says what to change."""
    if not _USER_RE.match(layout.user) or layout.user == "root":
        raise LayoutError(f"--user {layout.user!r}: give a system account name (lower-case letters, digits, - and _), not root")
    if not layout.bin_dir.is_absolute():
        raise LayoutError(f"--bin-dir {layout.bin_dir}: must be an absolute path")
    for hidden in _HIDDEN:
        if layout.bin_dir == hidden or hidden in layout.bin_dir.parents:
            raise LayoutError(
                f"scriptmail is installed in {layout.bin_dir}, under {hidden}, which the hardened units hide and web users "
                "may not reach: install it into a virtual environment such as /opt/scriptmail (see README)"
            )
    for name, path in (("intake.socket", layout.socket), ("intake.maildrop", layout.maildrop)):
        if not path.is_absolute():
            raise LayoutError(f"{name} = {str(path)!r}: a server needs an absolute path (the sendmail command runs anywhere)")
    sqlite_dir = layout.sqlite_dir
    if sqlite_dir is not None and not sqlite_dir.is_absolute():
        raise LayoutError(
            f"database_url {layout.database_url!r}: use an absolute path (sqlite:////var/lib/scriptmail/scriptmail.db)"
        )
