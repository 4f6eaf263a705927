"""The rspamd content scanner: verdicts from a real rspamd, and None (never an error) when it fails."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.utils import formatdate, make_msgid

import pytest

from scriptmail.intake.scanner import RspamdScanner, ScanResult, parse_result
from tests.support.rspamd import Rspamd, free_port

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def message(body: str, *, to: str = "Alice Martin <alice@example.org>", message_id: str | None = None) -> bytes:
    """A plain, well-formed message as a PHP shop would send it."""
    lines = [
        "From: Corner Shop <orders@shop.example>",
        f"To: {to}",
        "Subject: Your order 10452 has shipped",
        f"Date: {formatdate(localtime=True)}",
        f"Message-ID: {message_id or make_msgid(domain='shop.example')}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        body,
    ]
    return "\r\n".join(lines).encode() + b"\r\n"


ORDER_SHIPPED = (
    "Hello Alice,\r\n\r\nyour order 10452 left our shop today and should reach you within three working days.\r\n"
    "Thank you for shopping with us.\r\n\r\nThe Corner Shop team"
)


# --- a real rspamd -------------------------------------------------------------------------------


@pytest.fixture
async def scanner(rspamd: Rspamd) -> AsyncIterator[RspamdScanner]:
    scanner = RspamdScanner(rspamd.url, timeout=10.0)
    yield scanner
    await scanner.close()


async def test_gtube_message_is_spam_and_rspamd_would_reject_it(scanner: RspamdScanner) -> None:
    result = await scanner.scan(
        message(f"Hello,\r\n\r\n{GTUBE}\r\n"), sender="orders@shop.example", recipients=["alice@example.org"],
        client_ip="127.0.0.1", user="shop.example",
    )
    assert result is not None
    assert result.action == "reject"
    assert result.is_spam
    assert "GTUBE" in result.symbols


async def test_an_order_confirmation_is_not_spam(scanner: RspamdScanner) -> None:
    result = await scanner.scan(message(ORDER_SHIPPED), sender="orders@shop.example", recipients=["alice@example.org"], client_ip="127.0.0.1")
    assert result is not None
    assert not result.is_spam, result
    assert result.action == "no action"
    assert result.score < result.required_score
    assert len(result.symbols) <= 10


async def test_the_envelope_reaches_rspamd_and_several_recipients_still_give_a_result(rspamd: Rspamd, scanner: RspamdScanner) -> None:
    message_id = make_msgid(domain="shop.example")
    recipients = ["alice@example.org", "bob@example.net", "carol@example.com"]
    result = await scanner.scan(
        message(ORDER_SHIPPED, message_id=message_id), sender="bounces@shop.example", recipients=recipients,
        client_ip="203.0.113.7", user="shop.example",
    )
    assert result is not None
    assert not result.is_spam, result
    # The envelope sender is not the From: header, and rspamd weighed that.
    assert result.symbols[0] == "FORGED_SENDER"
    # rspamd logs each scan with the envelope it was given.
    line = await rspamd_log_line(rspamd, message_id.strip("<>"))
    assert "ip: 203.0.113.7," in line
    assert "user: shop.example," in line
    assert "from: <bounces@shop.example>" in line
    assert "rcpts: <alice@example.org,bob@example.net,carol@example.com>" in line


async def test_one_client_serves_many_scans(scanner: RspamdScanner) -> None:
    results = await asyncio.gather(*(
        scanner.scan(message(ORDER_SHIPPED), sender="orders@shop.example", recipients=["alice@example.org"]) for _ in range(20)
    ))
    assert all(result is not None and not result.is_spam for result in results)


async def rspamd_log_line(rspamd: Rspamd, message_id: str) -> str:
    """rspamd's log line for the scan of `message_id` (written just after it answers)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in rspamd.log.read_text(errors="replace").splitlines():
            if f"id: <{message_id}>" in line:
                return line
        await asyncio.sleep(0.05)
    raise AssertionError(f"rspamd logged no scan of <{message_id}>")


# --- failures: the scan is advisory, so each gives None and a warning --------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def http_peer(handler: Handler) -> AsyncIterator[str]:
    """A loopback TCP server that runs `handler` on each connection; yields its URL."""
    tasks: set[asyncio.Task] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the scanner gave up and hung up, as it should
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


def answering(status: str, body: bytes, content_type: str = "application/json") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    return handler


async def never_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.Event().wait()


async def scan_once(url: str, timeout: float = 5.0) -> tuple[ScanResult | None, float]:
    scanner = RspamdScanner(url, timeout=timeout)
    began = time.monotonic()
    try:
        result = await scanner.scan(message(ORDER_SHIPPED), sender="orders@shop.example", recipients=["alice@example.org"])
    finally:
        await scanner.close()
    return result, time.monotonic() - began


async def test_unreachable_scanner_gives_none_at_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="scriptmail.intake.scanner"):
        result, took = await scan_once(f"http://127.0.0.1:{free_port()}")
    assert result is None
    assert took < 1.0
    assert "going on without a scan" in caplog.text


async def test_a_scanner_that_never_answers_gives_none_after_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    async with http_peer(never_answering) as url:
        with caplog.at_level(logging.WARNING, logger="scriptmail.intake.scanner"):
            result, took = await scan_once(url, timeout=0.5)
    assert result is None
    assert 0.4 < took < 2.0
    assert "no answer within 0.5 s" in caplog.text


async def test_a_scanner_that_trickles_its_answer_is_cut_off_at_the_timeout() -> None:
    async def trickling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):  # one byte every 0.1 s: no single read waits for the timeout
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)

    async with http_peer(trickling) as url:
        result, took = await scan_once(url, timeout=0.5)
    assert result is None
    assert took < 2.0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        ("200 OK", b"{not json at all"),
        ("200 OK", b"<html>rspamd</html>"),
        ("200 OK", b'["a list", "not an object"]'),
        ("200 OK", b'{"score": "high", "required_score": 15, "action": "reject", "symbols": {}}'),
        ("200 OK", b'{"score": 3.0, "required_score": 15.0, "symbols": {}}'),
        ("200 OK", b'{"error": "message has too many recipients"}'),
        ("500 Internal Server Error", b'{"error": "internal error"}'),
        ("400 Bad Request", b'{"error": "cannot parse message"}'),
        ("302 Found", b""),
    ],
    ids=["garbage", "html", "list", "score-string", "no-action", "error-object", "http-500", "http-400", "redirect"],
)
async def test_a_broken_answer_gives_none_and_a_warning(status: str, body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async with http_peer(answering(status, body)) as url:
        with caplog.at_level(logging.WARNING, logger="scriptmail.intake.scanner"):
            result, _ = await scan_once(url)
    assert result is None
    assert "going on without a scan" in caplog.text


async def test_the_envelope_travels_as_request_headers() -> None:
    seen: list[bytes] = []

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        body = b'{"score": 2.5, "required_score": 15.0, "action": "no action", "symbols": {}}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async with http_peer(recording) as url:
        scanner = RspamdScanner(url, password="s3cret")
        result = await scanner.scan(
            b"Subject: x\r\n\r\nbody\r\n", sender="orders@shop.example", recipients=["a@example.org", "b@example.net"],
            client_ip="192.0.2.1", user="shop.example",
        )
        await scanner.close()
    assert result == ScanResult(2.5, 15.0, "no action", ())
    request = seen[0]
    assert request.startswith(b"POST /checkv2 HTTP/1.1\r\n")
    head = request.split(b"\r\n\r\n")[0].split(b"\r\n")
    for header in (b"From: orders@shop.example", b"Rcpt: a@example.org", b"Rcpt: b@example.net", b"IP: 192.0.2.1", b"User: shop.example",
                   b"Password: s3cret"):
        assert header in head
    assert request.endswith(b"\r\n\r\nSubject: x\r\n\r\nbody\r\n")


async def test_no_ip_user_or_password_headers_when_not_given() -> None:
    seen: list[bytes] = []

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        body = b'{"score": 0, "required_score": 15, "action": "no action", "symbols": {}}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async with http_peer(recording) as url:
        scanner = RspamdScanner(url)
        assert await scanner.scan(b"x\r\n", sender="a@shop.example", recipients=["b@example.org"]) is not None
        await scanner.close()
    names = {line.split(b":", 1)[0].lower() for line in seen[0].split(b"\r\n\r\n")[0].split(b"\r\n")[1:]}
    assert {b"from", b"rcpt"} <= names
    assert not names & {b"ip", b"user", b"password"}



async def test_a_line_break_in_the_envelope_is_no_header_injection_and_no_error() -> None:
    seen: list[bytes] = []

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))

    async with http_peer(recording) as url:
        scanner = RspamdScanner(url, timeout=1.0)
        result = await scanner.scan(b"x\r\n", sender="a@shop.example", recipients=["b@example.org\r\nSettings-Id: whitelist"])
        await scanner.close()
    assert result is None
    assert not any(b"Settings-Id" in request for request in seen)

# --- reading rspamd's answer: pure -------------------------------------------------------------------


def test_symbols_are_listed_highest_score_first_and_at_most_ten() -> None:
    symbols = {f"S{n:02d}": {"name": f"S{n:02d}", "score": float(n)} for n in range(15)}
    symbols["NEGATIVE"] = {"name": "NEGATIVE", "score": -3.0}
    result = parse_result({"score": 4.0, "required_score": 15.0, "action": "no action", "symbols": symbols})
    assert result.symbols == ("S14", "S13", "S12", "S11", "S10", "S09", "S08", "S07", "S06", "S05")


@pytest.mark.parametrize(
    ("score", "action", "spam"),
    [
        (1.0, "no action", False),
        (5.0, "greylist", False),
        (7.0, "soft reject", False),  # rspamd's temporary verdict (ratelimit, greylisting): not a spam verdict
        (6.5, "add header", True),
        (8.0, "rewrite subject", True),
        (0.0, "reject", True),  # GTUBE and forced actions reject with any score
        (15.0, "no action", True),  # the score reached the threshold even if a setting overrode the action
    ],
)
def test_is_spam_follows_the_action_or_the_threshold(score: float, action: str, spam: bool) -> None:
    assert ScanResult(score, 15.0, action, ()).is_spam is spam


def test_a_result_without_symbols_is_read() -> None:
    assert parse_result({"score": 0, "required_score": 15, "action": "no action"}) == ScanResult(0.0, 15.0, "no action", ())

