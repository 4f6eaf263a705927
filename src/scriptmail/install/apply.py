"""Carrying a plan out on a machine (root "/") or in a staging root: the account, the directories and
files with their owners and modes, the sendmail links through Debian's alternatives, and units.

Each step first looks at what is there and changes only what differs, so a second run changes
nothing. A staging root gets no useradd: the account is added to the root's own passwd and group
files, so that the owners of what is written there are the numbers that root will know.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scriptmail.install.accounts import Account, AccountError, find_account, new_account_lines
from scriptmail.install.layout import STATE_DIR, LayoutError
from scriptmail.install.plan import ALTERNATIVE_PRIORITY, ROOT, Directory, File, Plan

DIVERTED_SUFFIX = ".before-scriptmail"
_MTA_NAMES = (b"postfix", b"exim", b"opensmtpd", b"msmtp", b"ssmtp", b"nullmailer", b"sendmail")


class InstallError(Exception):
    """The installation stopped before doing anything unsafe; the message says why."""


@dataclass(frozen=True)
class Change:
    action: str  # created, changed, unchanged, kept, diverted, ran
    what: str
    path: str
    detail: str = ""


Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


def run_command(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


class Installer:
    """Installs one plan under `root`; `staging` says whether root is a staging root or the machine."""

    def __init__(self, root: Path, staging: bool, force: bool = False, run: Runner = run_command) -> None:
        self.root, self.staging, self.force, self._run = root, staging, force, run
        self.changes: list[Change] = []
        self._ids: dict[str, tuple[int, int]] = {ROOT: (0, 0)}
        self._may_chown = os.geteuid() == 0

    def path(self, path: PurePosixPath) -> Path:
        """Where `path` of the installed system is under the root; never outside it."""
        target = self.root / str(path).lstrip("/")
        if self.staging:  # a link on the way could lead out of the root (the last part is each caller's)
            current = self.root
            for part in target.relative_to(self.root).parts[:-1]:
                current = current / part
                if current.is_symlink():
                    raise InstallError(f"{current} is a symbolic link: refusing to write through it out of the staging root")
        return target

    # -- the account ---------------------------------------------------------------------------

    def ensure_account(self, name: str) -> Account:
        account = self._staged_account(name) if self.staging else self._system_account(name)
        if account.uid == 0 or account.gid == 0:
            raise InstallError(f"account {name} has uid or gid 0: the gateway must not run as root")
        if account.uid >= 1000:
            raise InstallError(
                f"account {name} has uid {account.uid}: that is a person's account, not a system one (choose --user)"
            )
        self._ids[name] = (account.uid, account.gid)
        return account

    def _system_account(self, name: str) -> Account:
        try:
            entry = pwd.getpwnam(name)
            group = grp.getgrnam(name)
            self.changes.append(Change("unchanged", "account", name, f"uid {entry.pw_uid}"))
            return Account(name, entry.pw_uid, group.gr_gid)
        except KeyError:
            pass
        command = [
            "useradd", "--system", "--user-group", "--home-dir", str(STATE_DIR), "--no-create-home",
            "--shell", "/usr/sbin/nologin", "--comment", "scriptmail mail gateway", name,
        ]  # fmt: skip
        result = self._run(command)
        if result.returncode != 0:
            raise InstallError(f"useradd {name} failed: {result.stderr.strip() or result.returncode}")
        entry = pwd.getpwnam(name)
        self.changes.append(Change("created", "account", name, f"uid {entry.pw_uid} ({' '.join(command)})"))
        return Account(name, entry.pw_uid, grp.getgrnam(name).gr_gid)

    def _staged_account(self, name: str) -> Account:
        passwd_path, group_path = self.path(PurePosixPath("/etc/passwd")), self.path(PurePosixPath("/etc/group"))
        try:
            passwd = passwd_path.read_text() if passwd_path.exists() else ""
            group = group_path.read_text() if group_path.exists() else ""
            found = find_account(passwd, group, name)
            if found is not None:
                self.changes.append(Change("unchanged", "account", name, f"uid {found.uid} in the root's passwd"))
                return found
            account, passwd_line, group_line = new_account_lines(passwd, group, name, str(STATE_DIR), "scriptmail mail gateway")
        except AccountError as error:
            raise InstallError(str(error)) from None
        passwd_path.parent.mkdir(parents=True, exist_ok=True)
        for path, text, line in ((passwd_path, passwd, passwd_line), (group_path, group, group_line)):
            with open(path, "a") as handle:
                handle.write(("" if not text or text.endswith("\n") else "\n") + line)
            if not text:
                os.chmod(path, 0o644)
        self.changes.append(Change("created", "account", name, f"uid {account.uid} in the root's passwd and group"))
        return account

    # -- directories and files -----------------------------------------------------------------

    def ensure_directory(self, directory: Directory) -> None:
        path = self.path(directory.path)
        created = False
        if not path.exists() and not path.is_symlink():
            path.mkdir(parents=True)
            created = True
        elif not path.is_dir() or path.is_symlink():
            raise InstallError(f"{path} is there and is not a directory")
        detail = f"{directory.owner}:{directory.group} {directory.mode:04o}"
        changed = self._set_owner_mode(path, directory.owner, directory.group, directory.mode)
        self.changes.append(
            Change("created" if created else "changed" if changed else "unchanged", "directory", str(directory.path), detail)
        )

    def ensure_file(self, file: File) -> bool:
        """Write the file unless it is the same; a `keep` file that exists keeps its content."""
        path = self.path(file.path)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise InstallError(f"{path} is there and is not a regular file")
        detail = f"{file.owner}:{file.group} {file.mode:04o}"
        existing = path.read_text() if path.exists() else None
        if existing is not None and (file.keep or existing == file.content):
            changed = self._set_owner_mode(path, file.owner, file.group, file.mode)
            action = "changed" if changed else ("kept" if file.keep and existing != file.content else "unchanged")
            self.changes.append(Change(action, "file", str(file.path), detail))
            return changed
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.scriptmail-new")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(file.content)
            handle.flush()
            os.fsync(handle.fileno())
        self._set_owner_mode(temporary, file.owner, file.group, file.mode)
        os.replace(temporary, path)  # a reader sees the old file or the new one, never half of it
        self.changes.append(Change("created" if existing is None else "changed", "file", str(file.path), detail))
        return True

    def _set_owner_mode(self, path: Path, owner: str, group: str, mode: int) -> bool:
        info = os.lstat(path)
        uid, gid = self._ids[owner][0], self._ids[group][1]
        changed = False
        if self._may_chown and (info.st_uid, info.st_gid) != (uid, gid):
            os.chown(path, uid, gid, follow_symlinks=False)
            changed = True
        if stat.S_IMODE(info.st_mode) != mode:
            os.chmod(path, mode)
            changed = True
        return changed

    # -- the sendmail links --------------------------------------------------------------------

    def foreign_links(self, plan: Plan) -> list[str]:
        """The sendmail links that belong to another MTA, each with what it seems to be."""
        found = []
        for link, name in plan.links:
            path = self.path(link)
            if not os.path.lexists(path):
                continue
            if path.is_symlink():
                target = os.readlink(path)
                if target == f"/etc/alternatives/{name}" or target == str(plan.layout.sendmail):
                    continue
            found.append(f"{link} ({self._owner_of(link, path)})")
        return found

    def _owner_of(self, link: PurePosixPath, path: Path) -> str:
        if not self.staging and shutil.which("dpkg-query"):
            result = self._run(["dpkg-query", "-S", str(link)])
            if result.returncode == 0 and ":" in result.stdout:
                return "package " + result.stdout.split(":", 1)[0].strip()
        try:
            head = path.resolve().read_bytes()[:1_000_000].lower() if path.resolve().is_file() else b""
        except OSError:
            head = b""
        name = next((n.decode() for n in _MTA_NAMES if n in head), None)
        return f"looks like {name}" if name else "another program"

    def _refuse_foreign(self, foreign: list[str]) -> None:
        if foreign and not self.force:
            raise InstallError(
                "another MTA provides " + ", ".join(foreign) + ": remove it (apt-get remove postfix / exim4) "
                "or pass --force to divert its files aside (dpkg-divert) and make scriptmail the system's sendmail"
            )

    def ensure_links(self, plan: Plan) -> None:
        foreign = self.foreign_links(plan)
        self._refuse_foreign(foreign)
        for entry in foreign:
            self._divert(PurePosixPath(entry.split(" ", 1)[0]))
        target = str(plan.layout.sendmail)
        # update-alternatives wants the program inside the root: a staging root without it (the
        # programs are copied in later) gets plain links, as a machine without alternatives does.
        if shutil.which("update-alternatives") and os.path.lexists(self.path(plan.layout.sendmail)):
            self._alternatives(plan, target)
            return
        for link, _name in plan.links:  # no alternatives system: plain links
            path = self.path(link)
            if path.is_symlink() and os.readlink(path) == target:
                self.changes.append(Change("unchanged", "link", str(link), f"-> {target}"))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            path.symlink_to(target)
            self.changes.append(Change("created", "link", str(link), f"-> {target}"))

    def _root_args(self) -> list[str]:
        return ["--root", str(self.root)] if self.staging else []

    def _divert(self, link: PurePosixPath) -> None:
        path, aside = self.path(link), self.path(PurePosixPath(str(link) + DIVERTED_SUFFIX))
        if shutil.which("dpkg-divert"):
            if self.staging:
                self.path(PurePosixPath("/var/lib/dpkg")).mkdir(parents=True, exist_ok=True)
            command = [
                "dpkg-divert",
                *self._root_args(),
                "--local",
                "--rename",
                "--divert",
                str(link) + DIVERTED_SUFFIX,
                "--add",
                str(link),
            ]
            result = self._run(command)
            if result.returncode != 0:
                raise InstallError(f"dpkg-divert {link} failed: {result.stderr.strip()}")
        if os.path.lexists(path):  # not diverted by dpkg (a link no package owns): set aside by hand
            os.replace(path, aside)
        self.changes.append(Change("diverted", "link", str(link), f"the other MTA's is now {link}{DIVERTED_SUFFIX}"))

    def _alternatives(self, plan: Plan, target: str) -> None:
        (master, master_name), *slaves = plan.links
        current = [self.path(PurePosixPath(f"/etc/alternatives/{name}")) for _, name in plan.links]
        if all(path.is_symlink() and os.readlink(path) == target for path in current) and all(
            self.path(link).is_symlink() for link, _ in plan.links
        ):
            for link, _ in plan.links:
                self.changes.append(Change("unchanged", "link", str(link), f"-> {target} (alternatives)"))
            return
        for link, _ in plan.links:
            self.path(link).parent.mkdir(parents=True, exist_ok=True)
        if self.staging:
            self.path(PurePosixPath("/etc/alternatives")).mkdir(parents=True, exist_ok=True)
            self.path(PurePosixPath("/var/lib/dpkg/alternatives")).mkdir(parents=True, exist_ok=True)
        command = [
            "update-alternatives",
            *self._root_args(),
            "--install",
            str(master),
            master_name,
            target,
            str(ALTERNATIVE_PRIORITY),
        ]
        for link, name in slaves:
            command += ["--slave", str(link), name, target]
        result = self._run(command)
        if result.returncode != 0:
            raise InstallError(f"update-alternatives failed: {result.stderr.strip()}")
        chosen = current[0]
        if not (chosen.is_symlink() and os.readlink(chosen) == target):
            if not self.force:
                raise InstallError(
                    f"another alternative provides {master} ({os.readlink(chosen) if chosen.is_symlink() else '?'}): "
                    "pass --force to choose scriptmail"
                )
            result = self._run(["update-alternatives", *self._root_args(), "--set", master_name, target])
            if result.returncode != 0:
                raise InstallError(f"update-alternatives --set failed: {result.stderr.strip()}")
        for link, _ in plan.links:
            self.changes.append(Change("created", "link", str(link), f"-> {target} (alternatives)"))

    # -- everything ----------------------------------------------------------------------------

    def install(self, plan: Plan) -> list[Change]:
        """Carry the whole plan out; refuses before writing anything if another MTA is in the way."""
        if not self.root.is_dir():
            raise InstallError(f"{self.root} is not a directory")
        self._refuse_foreign(self.foreign_links(plan))  # before anything is written
        self.ensure_account(plan.layout.user)
        for directory in plan.directories:
            self.ensure_directory(directory)
        units_changed = False
        for file in plan.files:
            changed = self.ensure_file(file)
            units_changed |= changed and file.path.suffix == ".service"
        self.ensure_links(plan)
        if units_changed and not self.staging and Path("/run/systemd/system").is_dir():
            result = self._run(["systemctl", "daemon-reload"])
            self.changes.append(Change("ran", "systemd", "systemctl daemon-reload", result.stderr.strip()))
        return self.changes


__all__ = ["Change", "InstallError", "Installer", "LayoutError"]
