"""Maildrop: with the daemon down the command drops the message, and pickup commits it later."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from scriptmail.intake.accept import Acceptor
from scriptmail.intake.maildrop import MaildropPickup
from scriptmail.intake.sendmail_protocol import Request, encode_request
from scriptmail.model import Hosting
from scriptmail.store.engine import open_engine
from scriptmail.store.hostings import add_hosting
from scriptmail.store.migrate import upgrade
from scriptmail.store.schema import bodies, messages, recipients
from scriptmail.store.writer import StoreUnavailable, Writer

COMMAND = shutil.which("scriptmail-sendmail", path=os.path.dirname(sys.executable))
MESSAGE = b"To: alice@example.org\nBcc: secret@example.org\nSubject: while down\nX-PHP-Originating-Script: 33:form.php\n\nhello\n"
root_only = pytest.mark.skipif(os.getuid() != 0, reason="giving a file another owner needs root")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple]:
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    writer = Writer(engine)
    writer.start()
    with engine.begin() as connection:
        hosting = add_hosting(connection, "shop.example.com", "owner@example.com", uid=os.getuid())
    yield engine, Acceptor(engine, writer, "mail.example.net", 64 * 1024), hosting
    writer.stop()
    engine.dispose()


@pytest.fixture
def pickup(store, tmp_path: Path) -> MaildropPickup:
    _, acceptor, _ = store
    drop = MaildropPickup(tmp_path / "maildrop", acceptor, interval=0.05)
    drop.ensure_layout()
    return drop


def dropped(pickup: MaildropPickup, name: str, content: bytes) -> Path:
    path = pickup.directory / "new" / name
    path.write_bytes(content)
    return path


def request_file(body: bytes, **fields) -> bytes:
    request = Request(op="send", recipients=("alice@example.org",), argv=("sendmail", "alice@example.org"), size=len(body), **fields)
    return encode_request(request) + body


def stored(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(messages)).all()


def test_layout_lets_anyone_drop_but_not_list(pickup):
    modes = {name: stat.S_IMODE((pickup.directory / name).stat().st_mode) for name in ("", "tmp", "new", "cur", "bad")}
    assert modes == {"": 0o755, "tmp": 0o1733, "new": 0o1733, "cur": 0o700, "bad": 0o700}


async def test_daemon_down_drops_the_message_and_pickup_commits_it(store, pickup, tmp_path):
    engine, _, hosting = store
    www = tmp_path / "www"
    www.mkdir()
    process = await asyncio.create_subprocess_exec(
        COMMAND, "-t", "-i", "-fshop@example.com", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=www,
        env={**os.environ, "SCRIPTMAIL_INTAKE__SOCKET": str(tmp_path / "no-daemon.sock"),
             "SCRIPTMAIL_INTAKE__MAILDROP": str(pickup.directory)},
    )
    _, stderr = await process.communicate(MESSAGE)
    assert (process.returncode, stderr) == (0, b"")
    (file,) = (pickup.directory / "new").iterdir()
    info = file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    assert list((pickup.directory / "tmp").iterdir()) == []

    assert await pickup.scan_once() == 1
    assert not file.exists()
    (message,) = stored(engine)
    assert (message.origin, message.client, message.hosting_id) == ("maildrop", f"uid:{os.getuid()}", hosting.id)
    assert (message.script, message.cwd, message.envelope_from) == ("33:form.php", str(www), "shop@example.com")
    with engine.connect() as connection:
        body = connection.execute(select(bodies.c.data)).scalar_one()
        addresses = connection.execute(select(recipients.c.address)).scalars().all()
    assert sorted(addresses) == ["alice@example.org", "secret@example.org"]
    assert b"Bcc" not in body and b"\r\nhello\r\n" in body
    assert await pickup.scan_once() == 0


@pytest.mark.parametrize(
    "content",
    [
        b"garbage without a header line",
        b'{"v": 1, "op": "send", "size": 99}\nshort',
        request_file(b"hello\n") + b"trailing",
        encode_request(Request(op="list")),
        b"\xff\xfe\n",
    ],
)
async def test_malformed_file_is_moved_to_bad(store, pickup, content, caplog):
    dropped(pickup, "1.1.bad", content)
    assert await pickup.scan_once() == 0
    assert (pickup.directory / "bad" / "1.1.bad").read_bytes() == content
    assert list((pickup.directory / "new").iterdir()) == []
    assert "moved to bad/" in caplog.text
    assert stored(store[0]) == []


async def test_refused_message_is_moved_to_bad(store, pickup):
    dropped(pickup, "1.1.relay", request_file(b"x\n", sender=None).replace(b"alice@example.org", b"a%b@example.org"))
    assert await pickup.scan_once() == 0
    assert (pickup.directory / "bad" / "1.1.relay").exists()


@root_only
async def test_file_of_an_unknown_uid_is_moved_to_bad_whatever_it_says(store, pickup, caplog):
    path = dropped(pickup, "1.1.foreign", request_file(b"hello\n"))
    os.chown(path, os.getuid() + 4242, -1)
    assert await pickup.scan_once() == 0
    assert (pickup.directory / "bad" / "1.1.foreign").exists()
    assert f"uid {os.getuid() + 4242} is not assigned to any hosting" in caplog.text
    assert stored(store[0]) == []


async def test_symlinks_and_hard_links_are_not_followed(store, pickup, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(request_file(b"private\n"))
    os.symlink(secret, pickup.directory / "new" / "1.1.link")
    os.link(secret, pickup.directory / "new" / "1.2.hard")
    assert await pickup.scan_once() == 0
    assert sorted(p.name for p in (pickup.directory / "bad").iterdir()) == ["1.1.link", "1.2.hard"]
    assert stored(store[0]) == []


class UnavailableAcceptor:
    def __init__(self, hosting: Hosting) -> None:
        self.hosting = hosting
        self.tries = 0

    async def hosting_by_uid(self, uid: int) -> Hosting | None:
        return self.hosting

    async def accept(self, *args, **kwargs) -> int:
        self.tries += 1
        raise StoreUnavailable("database is locked")


async def test_store_unavailable_leaves_the_file_for_the_next_scan(store, tmp_path):
    engine, acceptor, hosting = store
    down = UnavailableAcceptor(hosting)
    failing = MaildropPickup(tmp_path / "md", down, interval=1)  # type: ignore[arg-type]
    failing.ensure_layout()
    first = dropped(failing, "1.1.a", request_file(b"one\n"))
    second = dropped(failing, "1.2.b", request_file(b"two\n"))
    assert await failing.scan_once() == 0
    assert first.exists() and second.exists() and down.tries == 1  # the scan stops at the first failure
    assert await MaildropPickup(tmp_path / "md", acceptor, interval=1).scan_once() == 2
    assert not first.exists() and not second.exists()
    assert len(stored(engine)) == 2


async def test_run_scans_at_start_and_then_periodically_until_cancelled(store, pickup):
    dropped(pickup, "1.1.a", request_file(b"one\n"))
    task = asyncio.create_task(pickup.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if not list((pickup.directory / "new").iterdir()):
                break
        dropped(pickup, "1.2.b", request_file(b"two\n"))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len(stored(store[0])) == 2:
                break
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(stored(store[0])) == 2


async def test_two_pickups_on_one_directory_accept_each_file_once(store, pickup):
    engine, acceptor, _ = store
    other = MaildropPickup(pickup.directory, acceptor, interval=0.05, node="other")
    for number in range(30):
        dropped(pickup, f"{number:04d}.drop", request_file(f"Subject: {number}\r\n\r\nx\r\n".encode()))
    counts = await asyncio.gather(pickup.scan_once(), other.scan_once())
    assert sum(counts) == 30
    assert len(stored(engine)) == 30
    assert os.listdir(pickup.directory / "new") == [] and os.listdir(pickup.directory / "cur") == []


async def test_a_file_claimed_before_a_crash_is_accepted_at_the_next_scan(store, pickup):
    engine, _, _ = store
    (pickup.directory / "cur" / "0001.drop.local").write_bytes(request_file(b"Subject: left over\r\n\r\nx\r\n"))
    (pickup.directory / "cur" / "0002.drop.someone-else").write_bytes(request_file(b"Subject: not mine\r\n\r\nx\r\n"))
    assert await pickup.scan_once() == 1
    assert [row.subject for row in stored(engine)] == ["left over"]
    assert os.listdir(pickup.directory / "cur") == ["0002.drop.someone-else"]
