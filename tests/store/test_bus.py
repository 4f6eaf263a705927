"""The push between processes: notices reach every listener, fences wait for every named node,
and a notice announced in a transaction goes out only if it commits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from scriptmail.store import bus
from scriptmail.store.writer import Writer


async def test_a_fence_returns_once_every_named_node_has_acted(tmp_path: Path) -> None:
    directory = tmp_path / "db.bus"
    delivery, web = bus.UnixBus(directory, "out-1"), bus.UnixBus(directory, "web-1")
    reread: list[str] = []

    async def reread_states(kind: str, token: str, sender: str) -> None:
        await asyncio.sleep(0.05)  # the states are read from the store
        reread.append(token)

    delivery.on(bus.HOSTINGS, reread_states)
    await delivery.start()
    await web.start()
    try:
        started = time.monotonic()
        assert await web.fence({"out-1", "web-1"}, timeout=5)
        assert time.monotonic() - started < 2
        assert len(reread) == 1  # acknowledged only after the handler had finished
        assert not await web.fence({"out-1", "gone-node"}, timeout=0.3)  # a node that never answers
    finally:
        await delivery.close()
        await web.close()
    assert list(directory.iterdir()) == []  # each process removes its socket


async def test_a_dead_process_socket_is_cleared_and_does_not_stop_notices(tmp_path: Path) -> None:
    directory = tmp_path / "db.bus"
    listener, sender = bus.UnixBus(directory, "out-1"), bus.UnixBus(directory)
    woken = asyncio.Event()
    listener.on(bus.MAIL, lambda *_: woken.set())
    await listener.start()
    await sender.start()
    stale = directory / "crashed.4242.abcdef.sock"
    import socket

    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()  # bound, never unlinked: what a SIGKILL leaves
    try:
        sender.mail_committed()
        await asyncio.wait_for(woken.wait(), 5)
        await asyncio.sleep(0.05)
        assert not stale.exists()
    finally:
        await listener.close()
        await sender.close()


async def test_a_bus_directory_someone_else_can_write_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "db.bus"
    directory.mkdir(mode=0o777)
    directory.chmod(0o777)
    with pytest.raises(RuntimeError, match="mode 0700"):
        await bus.UnixBus(directory, "x").start()


def test_a_deep_database_path_gets_a_short_bus_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / "scriptmail.db"
    directory = bus.bus_directory(deep)
    assert len(str(directory)) < 64 and directory != bus.bus_directory(tmp_path / "other.db")


async def test_notices_of_a_rolled_back_transaction_are_never_sent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    from scriptmail.store.engine import open_engine

    engine: Engine = open_engine(url)
    writer = Writer(engine)
    listener = bus.open_bus(url, "out-1")
    heard: list[str] = []
    listener.on(bus.MAIL, lambda kind, token, node: heard.append(token))
    await listener.start()
    writer.bus = bus.open_bus(url)
    writer.start()
    try:

        def fails(connection) -> None:
            bus.announce(connection, bus.MAIL, "rolled-back")
            connection.execute(text("SELECT * FROM no_such_table"))

        with pytest.raises(Exception, match="no_such_table"):
            await writer.submit(fails)
        await writer.submit(lambda c: bus.announce(c, bus.MAIL, "committed"))
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        assert heard == ["committed"]
    finally:
        await asyncio.to_thread(writer.stop)
        await listener.close()
        engine.dispose()
