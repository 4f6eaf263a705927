"""Push between the processes that share a store: new mail to deliver, hosting states that
changed, and the acknowledgements that let a BLOCK answer as soon as every node holds it.

PostgreSQL has LISTEN/NOTIFY, which reaches every node of a multi-node platform; a notice
sent inside a transaction is delivered at its commit. An SQLite store lives on one machine, so
its processes use Unix datagram sockets in a directory beside the database file, and a notice
announced inside a transaction is sent by whoever commits it, after the commit.

Every notice is a hint: a lost one costs at most the next poll (delivery rereads the states
every second and looks for due mail every `poll_interval`), never a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "scriptmail"
MAIL = "mail"  # mail was committed: look for due recipients
HOSTINGS = "hostings"  # a hosting's state changed: reread which hostings send; answer with ACK
ACK = "ack"
ACCESS = "access"  # a token, grant, user or hosting went: the web forgets the access it remembered
_PENDING = "scriptmail.bus.pending"  # SQLite: notices announced in the open transaction
_COALESCE = 0.002  # new-mail notices of a burst share one send
_ACKS_KEPT = 30.0

Handler = Callable[[str, str, str], Awaitable[None] | None]  # kind, token, sender node


def new_token() -> str:
    return secrets.token_hex(6)


def announce(connection: Connection, kind: str, token: str = "-", node: str = "-") -> None:
    """Send a notice when the caller's transaction commits (and not at all if it rolls back)."""
    message = f"{kind} {token} {node}"
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, :message)"), {"channel": CHANNEL, "message": message})
    else:
        connection.info.setdefault(_PENDING, []).append(message)


def take_announced(connection: Connection) -> list[str]:
    """The SQLite notices of the transaction about to commit; the committer sends them after."""
    return connection.info.pop(_PENDING, [])


class Bus:
    """One process's end of the bus: it hears every notice and sends its own."""

    def __init__(self, node: str = "") -> None:
        self.node = node or "-"
        self._handlers: dict[str, list[Handler]] = {}
        self._acks: dict[str, tuple[float, set[str]]] = {}
        self._ack_waiters: dict[str, asyncio.Event] = {}
        self._mail_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers.setdefault(kind, []).append(handler)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        pass

    # --- sending ------------------------------------------------------------------------

    def send(self, messages: Iterable[str]) -> None:
        """Send notices now (from any thread)."""

    def mail_committed(self) -> None:
        """New mail is durable: wake delivery elsewhere, one notice per burst (event loop only)."""
        if self._mail_pending or self._loop is None:
            return
        self._mail_pending = True
        self._loop.call_later(_COALESCE, self._send_mail)

    def _send_mail(self) -> None:
        self._mail_pending = False
        self.send([f"{MAIL} - {self.node}"])

    # --- hearing ------------------------------------------------------------------------

    async def _hear(self, message: str) -> None:
        kind, _, rest = message.partition(" ")
        token, _, sender = rest.partition(" ")
        if kind == ACK:
            self._record_ack(token, sender)
            return
        for handler in self._handlers.get(kind, ()):
            try:
                outcome = handler(kind, token, sender)
                if outcome is not None:
                    await outcome
            except Exception:  # noqa: BLE001 - a handler bug must not stop the bus
                log.exception("bus handler for %r failed", kind)
        if kind == HOSTINGS and token != "-" and self.node != "-":
            # Handlers have applied the change here (delivery reread the states): say so.
            self.send([f"{ACK} {token} {self.node}"])

    def _record_ack(self, token: str, node: str) -> None:
        now = time.monotonic()
        for old in [t for t, (at, _) in self._acks.items() if at < now - _ACKS_KEPT]:
            del self._acks[old]
        self._acks.setdefault(token, (now, set()))[1].add(node)
        waiter = self._ack_waiters.get(token)
        if waiter is not None:
            waiter.set()

    async def fence(self, nodes: set[str], timeout: float) -> bool:
        """Once this returns True, every node in `nodes` has acted on every change committed
        before the call (delivery has reread the hosting states); False after `timeout`."""
        token = new_token()
        self.send([f"{HOSTINGS} {token} {self.node}"])
        return await self.acknowledged(token, nodes, timeout)

    async def acknowledged(self, token: str, nodes: set[str], timeout: float) -> bool:
        """Wait until every node in `nodes` has acknowledged `token`; False after `timeout`."""
        deadline = time.monotonic() + timeout
        waiter = self._ack_waiters.setdefault(token, asyncio.Event())
        try:
            while not nodes <= self._acks.get(token, (0.0, set()))[1]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                waiter.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(waiter.wait(), remaining)
            return True
        finally:
            self._ack_waiters.pop(token, None)


class UnixBus(Bus):
    """SQLite: one datagram socket per process in `directory`; a notice goes to every socket."""

    def __init__(self, directory: Path, node: str = "") -> None:
        super().__init__(node)
        self._directory = directory
        name = f"{(node or 'cli').replace('/', '_')[:24]}.{os.getpid()}.{secrets.token_hex(3)}.sock"
        self._path = directory / name
        self._sock: socket.socket | None = None
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setblocking(False)
        self._peers: list[str] = []
        self._peers_read = 0.0

    async def start(self) -> None:
        await super().start()
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self._directory.lstat()
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise RuntimeError(f"bus directory {self._directory} must belong to uid {os.getuid()} with mode 0700")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self._path))
        sock.setblocking(False)
        self._sock = sock
        self._peers_read = 0.0
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(512)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            asyncio.ensure_future(self._hear(data.decode("ascii", "replace")))

    async def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        self._out.close()

    def _listening(self) -> list[str]:
        # Processes come and go rarely: reread the directory at most every half second.
        now = time.monotonic()
        if now - self._peers_read > 0.5:
            try:
                self._peers = [entry.path for entry in os.scandir(self._directory) if entry.name.endswith(".sock")]
            except FileNotFoundError:
                self._peers = []
            self._peers_read = now
        return self._peers

    def send(self, messages: Iterable[str]) -> None:
        for message in messages:
            data = message.encode("ascii", "replace")
            for peer in self._listening():
                try:
                    self._out.sendto(data, peer)
                except (ConnectionRefusedError, FileNotFoundError):
                    # A process that died without closing its socket: nobody will read it again.
                    with contextlib.suppress(OSError):
                        os.unlink(peer)
                    self._peers_read = 0.0
                except OSError:
                    pass  # a full receive buffer: the receiver is busy and will poll anyway


class PostgresBus(Bus):
    """PostgreSQL: LISTEN on one connection; notices of our own go out on a second one."""

    def __init__(self, conninfo: str, node: str = "") -> None:
        super().__init__(node)
        self._conninfo = conninfo
        self._listen = None
        self._notify = None
        self._task: asyncio.Task | None = None
        self._outbox: asyncio.Queue[list[str]] | None = None
        self._sender: asyncio.Task | None = None

    async def start(self) -> None:
        import psycopg

        await super().start()
        self._listen = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        await self._listen.execute(f"LISTEN {CHANNEL}")
        self._notify = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        self._outbox = asyncio.Queue()
        self._task = asyncio.create_task(self._receive(), name="bus")
        self._sender = asyncio.create_task(self._send_loop(), name="bus-send")

    async def _receive(self) -> None:
        assert self._listen is not None
        async for notice in self._listen.notifies():
            await self._hear(notice.payload)

    async def _send_loop(self) -> None:
        assert self._outbox is not None and self._notify is not None
        while True:
            messages = await self._outbox.get()
            try:
                async with self._notify.transaction():
                    for message in messages:
                        await self._notify.execute("SELECT pg_notify(%s, %s)", (CHANNEL, message))
            except Exception as error:  # noqa: BLE001 - a hint lost; the pollers catch up
                log.warning("cannot send a notice on the bus: %s", error)

    def send(self, messages: Iterable[str]) -> None:
        batch = list(messages)
        if not batch or self._loop is None or self._outbox is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._outbox.put_nowait(batch)
        else:
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, batch)

    async def close(self) -> None:
        for task in (self._task, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        for connection in (self._listen, self._notify):
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()


def bus_directory(database: Path) -> Path:
    """Beside the database file; a socket path has at most 107 bytes, so a deep one moves to the
    temporary directory under a name derived from the database's absolute path."""
    beside = Path(f"{database}.bus")
    if len(str(beside.absolute())) <= 64:
        return beside
    digest = hashlib.sha256(str(database.absolute()).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"scriptmail-bus-{digest}"


def open_bus(database_url: str, node: str = "") -> Bus:
    """The bus of this store: LISTEN/NOTIFY on PostgreSQL, Unix datagrams beside an SQLite file."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresBus(url.set(drivername="postgresql").render_as_string(hide_password=False), node)
    if url.database and url.database != ":memory:":
        return UnixBus(bus_directory(Path(url.database)), node)
    return Bus(node)  # an in-memory store has one process: nothing to tell anyone
