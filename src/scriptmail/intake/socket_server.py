"""The daemon end of the sendmail command: a Unix socket where the kernel tells us who is calling.

The hosting is found only from the peer's uid (SO_PEERCRED), never from anything the caller
writes; cwd and argv are recorded as told, for the customer's tracking, not trusted. The answer
comes after the commit, so exit status 0 means the message is durable.

`flusher(hosting_id, domain)` is awaited for `-q` (the caller's own deferred mail, due now).
`queue_lister(hosting_id)` is awaited for `-bp`; it returns one dict per queued message:
``{"queue_id": int, "size": int, "arrival": float, "sender": str,
"recipients": [{"address": str, "status": str, "reason": str}]}`` (extra keys are passed along).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from scriptmail.intake.accept import Acceptor, Provenance
from scriptmail.intake.checks import Refused, check_address, normalize_newlines
from scriptmail.intake.headers import addresses_in, split_headers
from scriptmail.intake.sendmail_protocol import (
    DEFAULT_MAX_SIZE,
    EX_DATAERR,
    EX_NOPERM,
    EX_SOFTWARE,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    EX_USAGE,
    MAX_HEADER,
    ProtocolError,
    Request,
    encode_reply,
    error_reply,
    ok_reply,
    read_request,
)
from scriptmail.model import Hosting, Origin
from scriptmail.store.writer import StoreUnavailable

log = logging.getLogger(__name__)

QueueLister = Callable[[int], Awaitable[list[dict[str, Any]]]]
Flusher = Callable[[int, str], Awaitable[int]]  # (hosting id, domain or "") -> recipients made due

READ_TIMEOUT = 300.0  # a slow or silent peer must not hold a connection forever
REPLY_TIMEOUT = 30.0
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_credentials(sock: Any) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel saw it at connect()."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def exit_code(refused: Refused) -> int:
    """5.5.x (syntax, no or too many recipients) is a usage error; anything else is bad data."""
    return EX_USAGE if refused.text.startswith("5.5.") else EX_DATAERR


def default_sender(data: bytes, hosting: Hosting) -> str:
    """Without -f: the From address when it is a plain one, else the hosting owner's address.

    The envelope sender only decides where bounces go; who sent the message is the hosting, established by uid, whatever this returns.
    """
    for address in addresses_in(split_headers(data), "from")[:1]:
        with suppress(Refused):
            return check_address(address, role="sender")
    return hosting.owner_email


async def submit(
    acceptor: Acceptor,
    hosting: Hosting,
    request: Request,
    data: bytes,
    provenance: Provenance,
    max_recipients: int,
) -> int:
    """Check what the command claims as if it were hostile, then commit; shared with maildrop."""
    data = normalize_newlines(data)  # idempotent on the command's CRLF; guards other writers
    recipients = [check_address(address) for address in dict.fromkeys(request.recipients)]
    if len(recipients) > max_recipients:
        raise Refused(f"552 5.5.3 too many recipients ({len(recipients)}, at most {max_recipients} per message)")
    if request.sender is None:
        sender = default_sender(data, hosting)
    else:
        sender = check_address(request.sender, role="sender")
    return await acceptor.accept(hosting, sender, recipients, data, provenance)


def provenance_of(request: Request, origin: Origin, uid: int) -> Provenance:
    return Provenance(origin=origin, client=f"uid:{uid}", cwd=_text(request.cwd), command=_text(shlex.join(request.argv)))


def _text(value: str) -> str:
    """A path or argv as the caller's bytes gave it; bytes that are not UTF-8 (a surrogate after Python's
    decoding) become U+FFFD, since no store can keep a lone surrogate and the message must not be lost."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class SendmailService:
    """One request per connection: identify by uid, read, accept or list, answer one line."""

    def __init__(
        self, acceptor: Acceptor, queue_lister: QueueLister, max_size: int, max_recipients: int, flusher: Flusher | None = None
    ) -> None:
        self._acceptor = acceptor
        self._queue_lister = queue_lister
        self._flusher = flusher
        self._max_size = max_size
        self._max_recipients = max_recipients

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await self._answer(reader, writer)
        except Exception:  # noqa: BLE001 - one bad request must not stop the server
            log.exception("sendmail socket: unexpected error")
            reply = error_reply(EX_SOFTWARE, "internal error; the daemon's log has the details")
        try:
            writer.write(encode_reply(reply))
            await asyncio.wait_for(writer.drain(), REPLY_TIMEOUT)
        except (OSError, TimeoutError):
            pass  # the caller left; a committed message stays committed
        finally:
            writer.close()
            with suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), REPLY_TIMEOUT)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> dict[str, Any]:
        try:
            _pid, uid, _gid = peer_credentials(writer.get_extra_info("socket"))
        except (OSError, struct.error, AttributeError):
            return error_reply(EX_SOFTWARE, "cannot read the caller's credentials")
        try:  # before reading: an unknown caller's message is not worth receiving
            hosting = await self._acceptor.hosting_by_uid(uid)
        except StoreUnavailable as error:
            log.warning("sendmail socket: cannot look up uid %d: %s", uid, error)
            return error_reply(EX_TEMPFAIL, "queue temporarily unavailable, try again later")
        if hosting is None:
            return error_reply(EX_NOPERM, f"uid {uid} is not assigned to any hosting")
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                request, data = await read_request(reader, self._max_size)
        except ProtocolError as error:
            log.info("sendmail socket: bad request from uid %d: %s", uid, error)
            return error_reply(error.code, str(error))
        except TimeoutError:
            return error_reply(EX_TEMPFAIL, "timed out reading the request")
        except OSError as error:
            return error_reply(EX_TEMPFAIL, f"connection error: {error}")
        try:
            if request.op == "list":
                return ok_reply(rows=await self._queue_lister(hosting.id))
            if request.op == "flush":
                if self._flusher is None:
                    return error_reply(EX_UNAVAILABLE, "this daemon does not deliver; ask a delivery node's operator")
                site = request.site.lower()
                if site:  # -qRbücher.example: the queue knows the domain by its A-label
                    site = check_address(f"postmaster@{site}").partition("@")[2].lower()
                return ok_reply(retried=await self._flusher(hosting.id, site))
            provenance = provenance_of(request, Origin.SENDMAIL, uid)
            queue_id = await submit(self._acceptor, hosting, request, data, provenance, self._max_recipients)
        except Refused as refused:
            log.info("sendmail socket: refused a message from uid %d: %s", uid, refused.reply)
            return error_reply(exit_code(refused), refused.text)
        except StoreUnavailable as error:
            log.warning("sendmail socket: cannot commit a message from uid %d: %s", uid, error)
            return error_reply(EX_TEMPFAIL, "queue temporarily unavailable, try again later")
        return ok_reply(queue_id=queue_id)


def _remove_stale_socket(path: Path) -> None:
    """A socket file left by a dead daemon is removed; a live daemon or a regular file is an error."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RuntimeError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)
    else:
        raise RuntimeError(f"another process is already listening on {path}")
    finally:
        probe.close()


async def start_socket_server(
    path: Path,
    acceptor: Acceptor,
    queue_lister: QueueLister,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_recipients: int = 100,
    flusher: Flusher | None = None,
) -> asyncio.base_events.Server:
    """Listen on `path` (mode 0666: any local user may submit, the uid says who they are)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_socket(path)
    service = SendmailService(acceptor, queue_lister, max_size, max_recipients, flusher)
    server = await asyncio.start_unix_server(service.handle, path=str(path), limit=MAX_HEADER)
    os.chmod(path, 0o666)
    return server
