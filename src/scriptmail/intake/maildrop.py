"""Maildrop pickup: messages the sendmail command wrote while the daemon was down.

Like Postfix's maildrop, any user may drop a file but not list or remove the others' (mode 1733).
The hosting comes from the file's owner uid, which the kernel sets, never from its content. A file
is removed only after its message is committed (a crash in between means one duplicate, never a
loss); a file that can never be accepted is moved to bad/ with a log line.
The daemon must be able to read the callers' 0600 files: run it as root or with CAP_DAC_READ_SEARCH.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from pathlib import Path

from scriptmail.intake.accept import Acceptor
from scriptmail.intake.checks import Refused
from scriptmail.intake.sendmail_protocol import DEFAULT_MAX_SIZE, MAX_HEADER, ProtocolError, parse_file
from scriptmail.intake.socket_server import provenance_of, submit
from scriptmail.model import Origin
from scriptmail.store.writer import StoreUnavailable

log = logging.getLogger(__name__)

DROP_MODE = 0o1733  # write and search for all, list for the owner, sticky: no one removes others' files
BAD_MODE = 0o700


class Unusable(Exception):
    """This file can never become a message; it goes to bad/."""


class MaildropPickup:
    def __init__(
        self,
        directory: Path,
        acceptor: Acceptor,
        interval: float,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_recipients: int = 100,
        node: str = "local",
    ) -> None:
        self.directory = directory
        self._acceptor = acceptor
        self._interval = interval
        self._max_size = max_size
        self._max_recipients = max_recipients
        self._node = node

    def ensure_layout(self) -> None:
        """Create tmp/ and new/ (1733) and bad/ (0700); the modes are set even if umask is strict.

        The maildrop itself must be traversable by every caller (0755), or nobody could drop.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o755)
        for name, mode in (("tmp", DROP_MODE), ("new", DROP_MODE), ("cur", BAD_MODE), ("bad", BAD_MODE)):
            path = self.directory / name
            path.mkdir(exist_ok=True)
            os.chmod(path, mode)

    async def scan_once(self) -> int:
        """Accept every complete file in new/; return how many were committed.

        A file is first renamed into cur/ under this node's name: with two pickups on one
        directory, only the one whose rename succeeds accepts it. Files this node had claimed
        before a crash are picked up again first.
        """
        new, cur = self.directory / "new", self.directory / "cur"
        suffix = f".{self._node}"
        try:
            leftovers = sorted(name for name in os.listdir(cur) if name.endswith(suffix))
            names = sorted(os.listdir(new))  # names start with the drop time: oldest first
        except OSError as error:
            log.error("maildrop: cannot list %s: %s", self.directory, error)
            return 0
        committed = 0
        work = [(cur / name, None) for name in leftovers] + [(cur / (name + suffix), new / name) for name in names]
        for claimed, dropped in work:
            name = claimed.name
            if dropped is not None:
                try:
                    os.rename(dropped, claimed)
                except FileNotFoundError:
                    continue  # another pickup took it, or its owner removed it
            try:
                if await self._pick(claimed):
                    committed += 1
            except StoreUnavailable as error:
                log.warning("maildrop: store unavailable (%s); %s stays for the next scan", error, name)
                with contextlib.suppress(OSError):
                    os.rename(claimed, new / claimed.name.removesuffix(suffix))
                break
            except Unusable as error:
                self._set_aside(claimed, str(error))
            except PermissionError as error:
                log.error("maildrop: cannot read %s (%s); the daemon needs root or CAP_DAC_READ_SEARCH", name, error)
            except Exception:  # noqa: BLE001 - one odd file must not stop the files behind it
                log.exception("maildrop: %s failed; left for the next scan", name)
        return committed

    async def run(self) -> None:
        """Scan at start, then every `interval` seconds, until cancelled."""
        self.ensure_layout()
        while True:
            try:
                await self.scan_once()
            except Exception:  # noqa: BLE001 - the next scan may succeed; never stop picking up
                log.exception("maildrop: scan failed")
            await asyncio.sleep(self._interval)

    async def _pick(self, path: Path) -> bool:
        try:
            uid, content = await asyncio.to_thread(self._read, path)
        except FileNotFoundError:
            return False  # taken by a concurrent scan, or removed by its owner
        try:
            request, data = parse_file(content, self._max_size)
        except ProtocolError as error:
            raise Unusable(f"malformed: {error}") from None
        hosting = await self._acceptor.hosting_by_uid(uid)
        if hosting is None:
            raise Unusable(f"uid {uid} is not assigned to any hosting")
        try:
            provenance = provenance_of(request, Origin.MAILDROP, uid)
            queue_id = await submit(self._acceptor, hosting, request, data, provenance, self._max_recipients)
        except Refused as refused:
            raise Unusable(f"refused: {refused.reply}") from None
        path.unlink(missing_ok=True)
        log.info("maildrop: %s from uid %d queued as %d", path.name, uid, queue_id)
        return True

    def _read(self, path: Path) -> tuple[int, bytes]:
        """The owner and content of a regular file, opened without following links, bounded."""
        limit = MAX_HEADER + self._max_size
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, PermissionError):
            raise  # gone, or a daemon without the right to read: not the file's fault
        except OSError as error:
            raise Unusable(f"cannot open: {error.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise Unusable("not a regular file")
            if info.st_nlink != 1:
                raise Unusable("has other hard links; its owner may not be its writer")
            if info.st_size > limit:
                raise Unusable(f"{info.st_size} bytes, more than the limit of {limit}")
            with os.fdopen(fd, "rb", closefd=False) as stream:
                content = stream.read(limit + 1)
            if len(content) > limit:
                raise Unusable(f"more than the limit of {limit} bytes")
            return info.st_uid, content
        finally:
            os.close(fd)

    def _set_aside(self, path: Path, reason: str) -> None:
        name = path.name.removesuffix(f".{self._node}")
        try:
            os.rename(path, self.directory / "bad" / name)
        except FileNotFoundError:
            return
        except OSError as error:
            log.error("maildrop: %s cannot be accepted (%s) nor moved to bad/: %s", name, reason, error)
            return
        log.warning("maildrop: %s moved to bad/: %s", name, reason)
