"""The sendmail command end to end: the real command, a running socket server and a real store."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from scriptmail.intake.accept import Acceptor
from scriptmail.intake.sendmail import format_queue
from scriptmail.intake.sendmail_protocol import (
    EX_DATAERR,
    EX_USAGE,
    MAX_HEADER,
    ProtocolError,
    Request,
    decode_reply,
    decode_request,
    encode_request,
    parse_file,
)
from scriptmail.intake.socket_server import start_socket_server
from scriptmail.model import WAITING_STATUSES, Hosting
from scriptmail.store.engine import open_engine
from scriptmail.store.hostings import add_hosting
from scriptmail.store.migrate import upgrade
from scriptmail.store.schema import bodies, messages, recipients
from scriptmail.store.writer import StoreUnavailable, Writer

COMMAND = shutil.which("scriptmail-sendmail", path=os.path.dirname(sys.executable))
MAX_SIZE = 64 * 1024

PHP_MESSAGE = (
    b"To: Alice <alice@example.org>, bob@example.net\n"
    b"Cc: carol@example.com\n"
    b"Bcc: secret@example.org\n"
    b"Subject: Order 42\n"
    b"X-PHP-Originating-Script: 1000:contact.php\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"\n"
    b"Thank you.\n"
    b".\n"
    b"A lone dot above does not end the message.\n"
)


@dataclass
class Store:
    engine: Engine
    writer: Writer
    acceptor: Acceptor
    hosting: Hosting


def open_store(directory: Path, uid: int) -> Store:
    engine = open_engine(f"sqlite:///{directory / 'store.db'}")
    upgrade(engine)
    writer = Writer(engine)
    writer.start()
    with engine.begin() as connection:
        hosting = add_hosting(connection, "shop.example.com", "owner@example.com", uid=uid)
    return Store(engine, writer, Acceptor(engine, writer, "mail.example.net", MAX_SIZE), hosting)


def queue_lister(engine: Engine):
    """The -bp rows of one hosting: its messages with recipients still waiting."""

    def read(hosting_id: int) -> list[dict]:
        query = (
            select(messages, recipients.c.address, recipients.c.status, recipients.c.last_text)
            .join(recipients, recipients.c.message_id == messages.c.id)
            .where(messages.c.hosting_id == hosting_id, recipients.c.status.in_([s.value for s in WAITING_STATUSES]))
            .order_by(messages.c.id, recipients.c.id)
        )
        rows: dict[int, dict] = {}
        with engine.connect() as connection:
            for row in connection.execute(query):
                entry = rows.setdefault(
                    row.id,
                    {"queue_id": row.id, "size": row.size, "arrival": row.received_at, "sender": row.envelope_from, "recipients": []},
                )
                entry["recipients"].append({"address": row.address, "status": row.status, "reason": row.last_text})
        return list(rows.values())

    async def lister(hosting_id: int) -> list[dict]:
        return await asyncio.to_thread(read, hosting_id)

    return lister


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer."""
    directory = Path(tempfile.mkdtemp(prefix="sm-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path, uid=os.getuid())
    yield opened
    opened.writer.stop()
    opened.engine.dispose()


@pytest.fixture
async def daemon(store: Store, short_dir: Path) -> AsyncIterator[Path]:
    path = short_dir / "intake.sock"
    server = await start_socket_server(path, store.acceptor, queue_lister(store.engine), max_size=MAX_SIZE)
    yield path
    server.close()
    await server.wait_closed()


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


async def sendmail(
    args: list[str], data: bytes, socket_path: Path, maildrop: Path, cwd: Path | None = None, **env: str
) -> Run:
    assert COMMAND, "scriptmail-sendmail is not installed next to the test interpreter"
    environment = {**os.environ, "SCRIPTMAIL_SOCKET": str(socket_path), "SCRIPTMAIL_MAILDROP": str(maildrop), **env}
    process = await asyncio.create_subprocess_exec(
        COMMAND, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=environment, cwd=cwd,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(data), 60)
    return Run(process.returncode, stdout.decode(), stderr.decode())


def count_messages(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(messages)).scalar_one()


def only_message(engine: Engine):
    with engine.connect() as connection:
        message = connection.execute(select(messages)).one()
        body = connection.execute(select(bodies.c.data).where(bodies.c.message_id == message.id)).scalar_one()
        addresses = connection.execute(select(recipients.c.address).order_by(recipients.c.id)).scalars().all()
    return message, body, addresses


# --- the command against a running daemon ---------------------------------------------------


async def test_php_mail_is_stored_with_crlf_without_bcc_and_with_its_script(store, daemon, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    args = ["-t", "-i", "-fwebmaster@shop.example.com"]
    run = await sendmail(args, PHP_MESSAGE, daemon, tmp_path / "maildrop", cwd=www)
    assert (run.code, run.stderr) == (0, "")
    message, body, addresses = only_message(store.engine)
    assert addresses == ["alice@example.org", "bob@example.net", "carol@example.com", "secret@example.org"]
    assert body.count(b"\n") == body.count(b"\r\n") and b"\r" not in body.replace(b"\r\n", b"")
    assert b"\r\n.\r\nA lone dot above" in body
    # No Bcc field (a search for "bcc" anywhere would also hit the hex of a generated Message-ID).
    assert not re.search(rb"^bcc\s*:", body, re.IGNORECASE | re.MULTILINE) and b"secret@example.org" not in body
    assert message.script == "1000:contact.php"
    assert message.origin == "sendmail"
    assert message.client == f"uid:{os.getuid()}"
    assert message.envelope_from == "webmaster@shop.example.com"
    assert message.subject == "Order 42"
    assert message.cwd == str(www)
    assert message.command.endswith("scriptmail-sendmail -t -i -fwebmaster@shop.example.com")
    assert message.hosting_id == store.hosting.id


async def test_recipients_as_arguments_and_from_added_for_f_and_F(store, daemon, tmp_path):
    data = b"Subject: hello\n\nbody\n"
    run = await sendmail(["-F", "Web Shop", "-f", "shop@example.com", "a@example.org"], data, daemon, tmp_path / "md")
    assert run.code == 0, run.stderr
    message, body, addresses = only_message(store.engine)
    assert addresses == ["a@example.org"]
    assert body.startswith(b"Received: from shop.example.com by mail.example.net (scriptmail) with local;")
    assert b"\r\nDate: " in body and b"From: Web Shop <shop@example.com>\r\n" in body
    assert message.envelope_from == "shop@example.com"


async def test_without_f_the_envelope_sender_is_the_from_address_or_the_owner(store, daemon, tmp_path):
    assert (await sendmail(["-t"], b"From: Shop <shop@example.com>\nTo: a@example.org\n\nx\n", daemon, tmp_path)).code == 0
    assert (await sendmail(["-t"], b"To: b@example.org\n\nx\n", daemon, tmp_path)).code == 0
    with store.engine.connect() as connection:
        senders = connection.execute(select(messages.c.envelope_from).order_by(messages.c.id)).scalars().all()
    assert senders == ["shop@example.com", "owner@example.com"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-t", "-i", "-X/var/www/html/shell.php"], "-X"),
        (["-t", "-C/tmp/evil.cf"], "-C"),
        (["-t", "-OQueueDirectory=/tmp"], "-O"),
        (["-t", "-oQ/tmp"], "-oQ/tmp"),
        (["-t", "-f", "-X/tmp/log"], "must not start with '-'"),
        (["-t", "-fa@example.com\nBcc: victim@example.org"], "control character"),
        (["-t", "--rubbish"], "unknown option"),
    ],
)
async def test_refused_options_exit_64_and_store_nothing(store, daemon, tmp_path, args, says):
    run = await sendmail(args, PHP_MESSAGE, daemon, tmp_path / "maildrop")
    assert run.code == EX_USAGE
    assert run.stderr.startswith("scriptmail-sendmail: ") and says in run.stderr
    assert count_messages(store.engine) == 0
    assert not (tmp_path / "maildrop").exists()


async def test_bad_recipient_header_exits_65(store, daemon, tmp_path):
    run = await sendmail(["-t"], b"To: user@[10.0.0.1]\n\nx\n", daemon, tmp_path)
    assert run.code == EX_DATAERR and "invalid recipient" in run.stderr
    assert count_messages(store.engine) == 0


async def test_t_without_any_recipient_header_exits_64(store, daemon, tmp_path):
    run = await sendmail(["-t", "-i"], b"Subject: nobody\n\nx\n", daemon, tmp_path)
    assert run.code == EX_USAGE and "no recipient" in run.stderr


async def test_oversize_message_exits_65(store, daemon, tmp_path):
    big = b"To: a@example.org\n\n" + b"x" * 3000 + b"\n"
    run = await sendmail(["-t"], big, daemon, tmp_path, SCRIPTMAIL_MAX_MESSAGE_SIZE="2048")
    assert run.code == EX_DATAERR and "limit of 2048" in run.stderr
    assert count_messages(store.engine) == 0


async def test_oversize_is_refused_by_the_daemon_too(store, daemon, tmp_path):
    big = b"To: a@example.org\n\n" + b"x" * (MAX_SIZE + 10) + b"\n"
    run = await sendmail(["-t"], big, daemon, tmp_path, SCRIPTMAIL_INTAKE__MAX_MESSAGE_SIZE=str(10 * MAX_SIZE))
    assert run.code == EX_DATAERR and "exceeds the limit" in run.stderr
    assert count_messages(store.engine) == 0


async def test_unknown_uid_exits_77(tmp_path, short_dir):
    other = open_store(tmp_path, uid=os.getuid() + 4242)
    server = await start_socket_server(short_dir / "s", other.acceptor, queue_lister(other.engine))
    try:
        run = await sendmail(["-t", "-i"], PHP_MESSAGE, short_dir / "s", tmp_path / "maildrop")
    finally:
        server.close()
        await server.wait_closed()
        other.writer.stop()
    assert run.code == 77
    assert f"uid {os.getuid()} is not assigned to any hosting" in run.stderr
    assert count_messages(other.engine) == 0


async def test_bp_lists_the_callers_queue(store, daemon, tmp_path):
    run = await sendmail(["-bp"], b"", daemon, tmp_path)
    assert (run.code, run.stdout) == (0, "Mail queue is empty\n")
    assert (await sendmail(["-t", "-f", "shop@example.com"], PHP_MESSAGE, daemon, tmp_path)).code == 0
    run = await sendmail(["-bp"], b"", daemon, tmp_path)
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("-Queue ID-")
    assert lines[1].split()[0] == "1" and lines[1].endswith("shop@example.com")
    assert "secret@example.org" in run.stdout
    assert lines[-1] == "-- 1 Kbytes in 1 Request."


async def test_bp_with_the_daemon_down_exits_69(tmp_path, short_dir):
    run = await sendmail(["-bp"], b"", short_dir / "nothing.sock", tmp_path)
    assert run.code == 69 and "not reachable" in run.stderr


def test_mailq_layout_marks_held_messages_and_shows_reasons():
    text = format_queue([
        {"queue_id": 7, "size": 2048, "arrival": 0, "sender": "a@example.com",
         "recipients": [{"address": "b@example.org", "status": "held", "reason": ""},
                        {"address": "c@example.org", "status": "deferred", "reason": "451 try later"}]},
    ])
    assert "7!" in text and "(451 try later)" in text and text.endswith("-- 2 Kbytes in 1 Request.\n")


# --- the socket server facing a hostile peer ------------------------------------------------


async def exchange_raw(path: Path, payload: bytes) -> dict:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(payload)
    await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return json.loads(line)


def header(**fields) -> bytes:
    return json.dumps({"v": 1, "op": "send", **fields}).encode() + b"\n"


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "not a JSON object"),
        (b"\n", "not JSON"),
        (b"", "closed before"),
        (b"x" * (MAX_HEADER + 10), "too long"),
        (header(size=10, recipients=["a@example.org"]) + b"short", "ended after 5 of 10"),
        (header(size=-1), "non-negative"),
        (header(size=True), "non-negative"),
        (header(size=0, admin=True), "unknown request fields: admin"),
        (header(size=0, recipients="a@example.org"), "list of strings"),
        (json.dumps({"v": 9, "op": "send"}).encode() + b"\n", "version"),
        (json.dumps({"v": 1, "op": "delete"}).encode() + b"\n", "unknown op"),
        (json.dumps({"v": 1, "op": "flush", "size": 5}).encode() + b"\n" + b"x" * 5, "0 for a list or a flush"),
        (json.dumps({"v": 1, "op": "flush", "site": ["x"]}).encode() + b"\n", "site must be a domain name"),
    ],
)
async def test_garbage_gets_an_error_line_and_the_server_keeps_serving(store, daemon, tmp_path, payload, says):
    reply = await exchange_raw(daemon, payload)
    assert reply["ok"] is False and reply["code"] == EX_USAGE and says in reply["error"]
    assert (await sendmail(["a@example.org"], b"Subject: still here\n\nx\n", daemon, tmp_path)).code == 0


async def test_daemon_checks_addresses_and_line_endings_itself(store, daemon):
    body = b"Subject: raw\n\nbare\rcr\n"
    bad = await exchange_raw(daemon, header(size=len(body), recipients=["user%other@[10.0.0.1]"]) + body)
    assert bad["code"] == EX_DATAERR and "routing in the local part" in bad["error"]
    bad_sender = await exchange_raw(daemon, header(size=len(body), sender="-X/tmp", recipients=["a@example.org"]) + body)
    assert bad_sender["code"] == EX_DATAERR
    too_many = await exchange_raw(daemon, header(size=len(body), recipients=[f"r{i}@example.org" for i in range(101)]) + body)
    assert too_many["code"] == EX_USAGE and "too many recipients" in too_many["error"]
    good = await exchange_raw(daemon, header(size=len(body), recipients=["a@example.org"]) + body)
    assert good["ok"] is True
    _, stored, _ = only_message(store.engine)
    assert stored.endswith(b"\r\nbare\r\ncr\r\n")


async def test_socket_is_world_writable_and_a_stale_one_is_replaced(store, short_dir):
    path = short_dir / "intake.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a crashed daemon leaves
    server = await start_socket_server(path, store.acceptor, queue_lister(store.engine))
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
        with pytest.raises(RuntimeError, match="already listening"):
            await start_socket_server(path, store.acceptor, queue_lister(store.engine))
    finally:
        server.close()
        await server.wait_closed()


async def test_a_regular_file_in_place_of_the_socket_is_not_removed(store, short_dir):
    path = short_dir / "intake.sock"
    path.write_text("keep me")
    with pytest.raises(RuntimeError, match="not a socket"):
        await start_socket_server(path, store.acceptor, queue_lister(store.engine))
    assert path.read_text() == "keep me"


class UnavailableAcceptor:
    """The database is down: hostings can be read from cache but nothing can be committed."""

    def __init__(self, hosting: Hosting) -> None:
        self.hosting = hosting

    async def hosting_by_uid(self, uid: int) -> Hosting | None:
        return self.hosting if uid == self.hosting.uid else None

    async def accept(self, *args, **kwargs) -> int:
        raise StoreUnavailable("database is locked")


async def test_store_unavailable_sends_the_message_to_the_maildrop(store, short_dir, tmp_path):
    maildrop = tmp_path / "maildrop"
    (maildrop / "tmp").mkdir(parents=True)
    (maildrop / "new").mkdir()
    path = short_dir / "intake.sock"
    server = await start_socket_server(path, UnavailableAcceptor(store.hosting), queue_lister(store.engine))
    try:
        run = await sendmail(["-t", "-i"], PHP_MESSAGE, path, maildrop)
    finally:
        server.close()
        await server.wait_closed()
    assert run.code == 0, run.stderr
    assert len(list((maildrop / "new").iterdir())) == 1


# --- the framing, pure ----------------------------------------------------------------------


def test_request_round_trip_and_strict_file_parsing():
    request = Request(op="send", sender=None, recipients=("a@example.org",), extract=True, cwd="/w", argv=("sendmail", "-t"), size=3)
    line = encode_request(request)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line, 100) == request
    assert parse_file(line + b"abc", 100) == (request, b"abc")
    for content in (line + b"ab", line + b"abcd", b"no newline", encode_request(Request(op="list"))):
        with pytest.raises(ProtocolError):
            parse_file(content, 100)
    with pytest.raises(ProtocolError) as too_big:
        decode_request(line, 2)
    assert too_big.value.code == EX_DATAERR


def test_unreadable_replies_become_software_errors():
    assert decode_reply(b"garbage\n")["code"] == 70
    assert decode_reply(b'{"ok": false, "code": "x"}\n') == {"ok": False, "code": 70, "error": "unknown error"}
    assert decode_reply(b'{"ok": true, "queue_id": 3}\n') == {"ok": True, "queue_id": 3}


async def test_peers_that_hang_up_midway_do_not_disturb_the_server(store, daemon, tmp_path, caplog):
    for payload in (b"", b'{"v": 1, "op": "se', header(size=100, recipients=["a@example.org"]) + b"part"):
        _, writer = await asyncio.open_unix_connection(str(daemon))
        writer.write(payload)
        writer.close()
    await asyncio.sleep(0.1)
    assert (await sendmail(["a@example.org"], b"Subject: fine\n\nx\n", daemon, tmp_path)).code == 0
    assert count_messages(store.engine) == 1
    assert "unexpected error" not in caplog.text


async def test_a_flush_for_a_hostile_domain_is_refused(store, short_dir):
    asked: list[tuple[int, str]] = []

    async def flusher(hosting_id: int, site: str) -> int:
        asked.append((hosting_id, site))
        return 0

    path = short_dir / "flush.sock"
    server = await start_socket_server(path, store.acceptor, queue_lister(store.engine), flusher=flusher)
    try:
        bad = await exchange_raw(path, json.dumps({"v": 1, "op": "flush", "site": "x%' OR '1"}).encode() + b"\n")
        good = await exchange_raw(path, json.dumps({"v": 1, "op": "flush", "site": "Example.ORG"}).encode() + b"\n")
    finally:
        server.close()
        await server.wait_closed()
    assert bad["ok"] is False and bad["code"] == EX_DATAERR
    assert good == {"ok": True, "retried": 0}
    assert asked == [(store.hosting.id, "example.org")]
