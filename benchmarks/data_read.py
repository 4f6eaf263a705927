"""CPU per message of reading DATA: aiosmtpd's line-at-a-time loop against intake's piecewise read.

Both servers are the intake's own protocol class on loopback, in this process, with a handler
that answers 250 at once (no store); they differ only in smtp_DATA. One client session sends
messages one after another. The runs alternate and the fastest of each is kept, because this
machine's cores change speed from one second to the next.

    .venv/bin/python benchmarks/data_read.py [--messages 2000] [--size 4096] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiosmtpd.smtp import SMTP

from scriptmail.intake.smtp_protocol import SubmissionSMTP


class Handler:
    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd's hook
        return "250 2.0.0 queued"


class LineByLine(SubmissionSMTP):
    """aiosmtpd's own DATA."""

    smtp_DATA = SMTP.smtp_DATA


def _message(size: int) -> bytes:
    line = b"a" * 72 + b"\r\n"
    body = b"Subject: data read\r\n\r\n" + line * (size // len(line))
    return body.replace(b"\r\n.", b"\r\n..") + b".\r\n"


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if line[3:4] != b"-":
            return line


async def _session(port: int, messages: int, body: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader)
    for command in (b"EHLO bench.test\r\n",):
        writer.write(command)
        await _reply(reader)
    for _ in range(messages):
        for command in (b"MAIL FROM:<a@bench.test>\r\n", b"RCPT TO:<b@sink.test>\r\n", b"DATA\r\n"):
            writer.write(command)
            await _reply(reader)
        writer.write(body)
        assert (await _reply(reader)).startswith(b"250")
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


async def _run(protocol: type[SMTP], messages: int, body: bytes) -> float:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(Handler(), hostname="bench.test", data_size_limit=0, decode_data=False, loop=loop),
        "127.0.0.1", 0,
    )  # fmt: skip
    port = server.sockets[0].getsockname()[1]
    started = time.process_time()
    await _session(port, messages, body)
    spent = time.process_time() - started
    server.close()
    await server.wait_closed()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    body = _message(args.size)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, protocol in (("aiosmtpd, a line at a time", LineByLine), ("intake, in pieces", SubmissionSMTP)):
            spent = asyncio.run(_run(protocol, args.messages, body))
            best[name] = min(best.get(name, spent), spent)
    print(f"{args.messages} messages of {len(body)} B, one session, server and client in one process; best of {args.rounds}:")
    for name, spent in best.items():
        print(f"  {name:28} {1e6 * spent / args.messages:7.1f} µs CPU per message (server and client)")


if __name__ == "__main__":
    main()
