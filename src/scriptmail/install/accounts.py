"""The system account in a staging root's own passwd and group files: read them, and the lines to
add when the account is missing (the numbers a `useradd --system` would pick). Pure text in, text out."""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_IDS = range(100, 1000)  # Debian's SYS_UID_MIN..SYS_UID_MAX; useradd --system counts down from the top
NOLOGIN = "/usr/sbin/nologin"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


class AccountError(ValueError):
    """The account file cannot be used as it is."""


def _entries(text: str, fields: int, what: str) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != fields or not parts[2].isdigit():
            raise AccountError(f"{what} line {number} is not a valid entry: {line[:60]!r}")
        entries[parts[0]] = parts
    return entries


def find_account(passwd: str, group: str, name: str) -> Account | None:
    """The account and its group by name, from passwd(5) and group(5) text; None if either is missing."""
    users, groups = _entries(passwd, 7, "passwd"), _entries(group, 4, "group")
    if name not in users or name not in groups:
        return None
    return Account(name, int(users[name][2]), int(groups[name][2]))


def new_account_lines(passwd: str, group: str, name: str, home: str, comment: str) -> tuple[Account, str, str]:
    """The passwd and group lines that add `name` with one free system number for both, highest first."""
    users, groups = _entries(passwd, 7, "passwd"), _entries(group, 4, "group")
    if name in users or name in groups:
        raise AccountError(f"{name} is in passwd or group but not in both: fix the staging root's account files")
    used = {int(entry[2]) for entry in users.values()} | {int(entry[2]) for entry in groups.values()}
    free = next((number for number in reversed(SYSTEM_IDS) if number not in used), None)
    if free is None:
        raise AccountError("no free system uid/gid between 100 and 999")
    account = Account(name, free, free)
    return account, f"{name}:x:{free}:{free}:{comment}:{home}:{NOLOGIN}\n", f"{name}:x:{free}:\n"
