"""A receiving SMTP server for tests that records the exact bytes on the wire.

It is a test peer, not part of scriptmail: a few lines of ESMTP on a loopback port, in a thread
of its own, whose replies a test can script (defer, bounce, drop the connection, delay).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    raw: bytes  # as sent between 354 and the final CRLF.CRLF, dot-stuffing included
    at: float
    tls: bool = False
    peer: str = ""  # the sending side's address, as the sink saw it
    helo: str = ""  # the name the client gave in EHLO/HELO
    mail_options: list[str] = field(default_factory=list)  # the MAIL FROM parameters, e.g. ["SMTPUTF8"]

    @property
    def data(self) -> bytes:
        """The message with dot-stuffing removed."""
        lines = self.raw.split(b"\r\n")
        return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


@dataclass
class Behaviour:
    """What the sink answers. Each hook gets the sink and returns an SMTP reply line, or None to
    hang up without answering."""

    greeting: str = "220 sink.test ESMTP"
    rcpt: Callable[[str], str | None] = lambda address: "250 2.1.5 ok"
    data: Callable[[Received], str | None] = lambda message: "250 2.0.0 accepted by sink"
    delay: float = 0.0  # seconds before answering the final dot


@dataclass
class Sink:
    host: str = "127.0.0.1"
    behaviour: Behaviour = field(default_factory=Behaviour)
    messages: list[Received] = field(default_factory=list)
    port: int = 0
    connections: int = 0
    open_now: int = 0  # sessions open at this moment (one ends when its QUIT arrives or it drops)
    most_open: int = 0  # the most that were open at once
    tls: ssl.SSLContext | None = None  # offer STARTTLS with this context
    smtputf8: bool = True  # offer SMTPUTF8 (RFC 6531); without it, a non-ASCII command is refused as old servers do

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._lock = threading.Lock()

    def start(self) -> Sink:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"sink got {len(self.messages)} messages, expected {count}")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, self.host, self.port, limit=2**24))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        ended = [False]

        def end() -> None:
            if not ended[0]:
                ended[0] = True
                self.open_now -= 1

        try:
            await self._session(reader, writer, end)
        finally:
            end()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, end: Callable[[], None]) -> None:
        behaviour = self.behaviour

        async def say(line: str | None) -> bool:
            if line is None:
                writer.close()
                return False
            writer.write(line.encode() + b"\r\n")
            await writer.drain()
            return True

        encrypted = False
        peer = (writer.get_extra_info("peername") or ("",))[0]
        helo = ""
        try:
            await say(behaviour.greeting)
            mail_from, recipients, mail_options = "", [], []
            while True:
                line = await reader.readline()
                if not line:
                    return
                if not line.isascii() and not self.smtputf8:
                    await say("500 5.5.2 non-ASCII command: SMTPUTF8 is not offered here")
                    continue
                command = line.decode("utf-8", errors="surrogateescape").strip()
                verb = command[:4].upper()
                if verb in ("EHLO", "HELO"):
                    helo = command[5:].strip()
                    offer = "250-STARTTLS\r\n" if self.tls and not encrypted else ""
                    offer += "250-SMTPUTF8\r\n" if self.smtputf8 else ""
                    await say(f"250-sink.test\r\n{offer}250-8BITMIME\r\n250 SIZE 52428800")
                elif verb == "STAR" and self.tls and not encrypted:
                    await say("220 2.0.0 ready to start TLS")
                    await writer.start_tls(self.tls)
                    encrypted = True
                elif verb == "MAIL":
                    path, _, parameters = command[10:].strip().partition(" ")
                    mail_from, recipients, mail_options = path.strip("<>"), [], parameters.split()
                    if "SMTPUTF8" in (option.upper() for option in mail_options) and not self.smtputf8:
                        await say("555 5.5.4 SMTPUTF8 is not offered here")
                        continue
                    await say("250 2.1.0 ok")
                elif verb == "RCPT":
                    address = command[8:].strip().strip("<>")
                    reply = behaviour.rcpt(address)
                    if reply is not None and reply.startswith("2"):
                        recipients.append(address)
                    if not await say(reply):
                        return
                elif verb == "DATA":
                    await say("354 go ahead")
                    raw = await reader.readuntil(b"\r\n.\r\n")
                    message = Received(
                        mail_from,
                        recipients,
                        raw[:-3],
                        time.time(),
                        tls=encrypted,
                        mail_options=mail_options,
                        peer=peer,
                        helo=helo,
                    )
                    if behaviour.delay:
                        await asyncio.sleep(behaviour.delay)
                    reply = behaviour.data(message)
                    if reply is not None and reply.startswith("2"):
                        with self._lock:
                            self.messages.append(message)
                    if not await say(reply):
                        return
                elif verb == "RSET":
                    mail_from, recipients, mail_options = "", [], []
                    await say("250 ok")
                elif verb == "QUIT":
                    end()
                    await say("221 bye")
                    writer.close()
                    return
                else:
                    await say("250 ok")
        except (ConnectionError, asyncio.IncompleteReadError):
            return
