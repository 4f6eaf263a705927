"""`sendmail -bs`: an SMTP dialogue on stdin and stdout (Symfony Mailer's and Laravel's default).

The caller speaks to the same aiosmtpd protocol class as the network server (`intake/smtp_protocol.py`),
so command and line limits, address rules, the size limit and the smuggling check are the same, and
so are the replies. Each message then goes the way `sendmail -t` sends it: over the Unix socket,
where the daemon knows the caller by uid, else into the maildrop; `250` comes only once it is
durable in one or the other. AUTH is neither needed nor offered (the uid is the identity) and
there is no STARTTLS (the pipe never leaves the machine).

aiosmtpd works on a socket, so the command opens a socket pair and two threads copy stdin into one
end and that end's output to stdout.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from collections.abc import Sequence

from aiosmtpd.smtp import SMTP, Envelope, Session

from scriptmail.intake.checks import Refused, check_data
from scriptmail.intake.sendmail import Failure, hand_over, working_directory
from scriptmail.intake.sendmail_config import Locations
from scriptmail.intake.sendmail_protocol import EX_NOPERM, EX_OK, EX_TEMPFAIL, Request
from scriptmail.intake.smtp_protocol import SubmissionSMTP, hook_names, mail_refusal, rcpt_refusal

MAX_RECIPIENTS = 100  # RFC 5321's minimum; the daemon applies intake.max_recipients again
IDLE_TIMEOUT = 300  # as the network server


class PipeHandler:
    """aiosmtpd hooks for one caller whose identity is its uid: checks, then hand_over()."""

    def __dir__(self) -> tuple[str, ...]:
        return hook_names(type(self), ("handle_",))

    def __init__(self, where: Locations, argv: Sequence[str]) -> None:
        self._where = where
        self._argv = tuple(argv)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        # Commands are read and answered strictly in order, so a client may send them in groups.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        refusal, address = mail_refusal(address, bool(envelope.smtp_utf8))
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 sender ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        refusal, address = rcpt_refusal(envelope, address, MAX_RECIPIENTS)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 recipient ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        try:
            check_data(data)
        except Refused as refused:
            return refused.reply
        request = Request(
            op="send",
            sender=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            cwd=working_directory(),
            argv=self._argv,
            size=len(data),
        )
        try:
            queue_id = await asyncio.to_thread(hand_over, self._where, request, data)
        except Failure as failure:
            return reply_for(failure)
        if queue_id is None:
            return "250 2.0.0 queued in the maildrop; the daemon will take it when it is back"
        return f"250 2.0.0 queued as {queue_id}"


def reply_for(failure: Failure) -> str:
    """The daemon's refusal (a sysexits code and a text that starts with an enhanced status) as a reply."""
    text = " ".join(failure.message.split())[:400]
    if failure.code == EX_TEMPFAIL:
        return f"451 4.3.0 {text}"
    if failure.code == EX_NOPERM:
        return f"550 5.7.1 {text}"
    if text[:2] == "5." and text[3:4] == ".":
        return f"554 {text}"
    return f"554 5.6.0 {text}"


class PipeSMTP(SubmissionSMTP):
    """The shared protocol class; it tells the command when the dialogue is over."""

    finished: asyncio.Future[None]

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if not self.finished.done():
            self.finished.set_result(None)


def converse(argv: Sequence[str], where: Locations) -> int:
    """Run one SMTP dialogue over stdin/stdout; 0 when it ended (QUIT or end of input)."""
    ours, theirs = socket.socketpair()
    output = threading.Thread(target=_copy_out, args=(ours, sys.stdout.buffer.fileno()), daemon=True)
    output.start()
    asyncio.run(_serve(ours, theirs, where, argv))
    output.join(10)
    return EX_OK


async def _serve(ours: socket.socket, theirs: socket.socket, where: Locations, argv: Sequence[str]) -> None:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    input_ended = asyncio.Event()
    handler = PipeHandler(where, argv)
    protocols: list[PipeSMTP] = []

    def factory() -> PipeSMTP:
        protocol = PipeSMTP(
            handler,
            hostname=socket.gethostname(),  # not getfqdn(): no DNS lookup before the greeting
            ident="scriptmail sendmail -bs",
            data_size_limit=where.max_size,
            enable_SMTPUTF8=True,  # RFC 6531: UTF-8 addresses; check_address decides what is acceptable
            decode_data=False,
            auth_required=False,
            auth_require_tls=True,  # with no TLS on a pipe, AUTH is never offered
            timeout=IDLE_TIMEOUT,
            loop=loop,
        )
        protocol.finished = finished
        protocols.append(protocol)
        return protocol

    transport, _ = await loop.connect_accepted_socket(factory, theirs)
    stdin = sys.stdin.buffer.fileno()
    threading.Thread(target=_copy_in, args=(stdin, ours, loop, input_ended), daemon=True).start()
    closer = asyncio.create_task(_end_when_answered(input_ended, protocols[0], theirs, ours))
    try:
        await finished
    finally:
        closer.cancel()
        transport.close()


async def _end_when_answered(input_ended: asyncio.Event, protocol: PipeSMTP, theirs: socket.socket, ours: socket.socket) -> None:
    """At the end of input, let the session answer everything it was sent, then give it the EOF.

    A client may write its whole dialogue and close at once (`printf ... | sendmail -bs`); aiosmtpd
    ends a session at EOF even in the middle of a command, so the EOF waits until nothing is unread
    (in the socket or in the reader) and the session is waiting for its next line.
    """
    await input_ended.wait()
    reader = protocol._reader  # aiosmtpd's StreamReader; _waiter is set while it waits for input
    while not (_unread(theirs) == 0 and not reader._buffer and reader._waiter is not None):
        await asyncio.sleep(0.005)
    try:
        ours.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _unread(sock: socket.socket) -> int:
    import fcntl
    import struct
    import termios

    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _copy_in(fd: int, sock: socket.socket, loop: asyncio.AbstractEventLoop, ended: asyncio.Event) -> None:
    try:
        while chunk := os.read(fd, 65536):
            sock.sendall(chunk)
    except OSError:
        pass
    try:
        loop.call_soon_threadsafe(ended.set)
    except RuntimeError:
        pass  # the session is already over


def _copy_out(sock: socket.socket, fd: int) -> None:
    try:
        while chunk := sock.recv(65536):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    except OSError:
        pass
