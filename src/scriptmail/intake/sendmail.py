"""The sendmail-compatible command (`scriptmail-sendmail`): what PHP's mail() runs on every call.

It parses the command line strictly, reads the message, and hands it to the daemon over the
Unix socket, which identifies the caller by uid. If the daemon cannot be reached, or answers
that the queue is temporarily unavailable, the message goes to the maildrop directory (atomic
rename, owned by the caller) and the command still exits 0: mail from scripts is never lost.
Where the socket and the maildrop are comes from the environment, /etc/scriptmail or the
checkout's defaults (`intake/sendmail_config.py`). Stdlib only, so that it starts fast.
"""

from __future__ import annotations

import email.utils
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scriptmail.intake.checks import Refused, check_address, normalize_newlines
from scriptmail.intake.headers import addresses_in, split_headers
from scriptmail.intake.sendmail_args import Invocation, Mode, UsageError, parse_args
from scriptmail.intake.sendmail_config import ConfigError, Locations, find
from scriptmail.intake.sendmail_protocol import (
    EX_DATAERR,
    EX_OK,
    EX_SOFTWARE,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    MAX_REPLY,
    Request,
    decode_reply,
    encode_request,
)

EXCHANGE_TIMEOUT = 300.0  # the daemon answers after its commit; a dead one must not hang PHP


class Failure(Exception):
    """The command ends with `code` and prints `message`: the daemon's answer or a local failure."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def compose(invocation: Invocation, raw: bytes) -> tuple[list[str], bytes]:
    """CRLF lines, -t recipients from To/Cc/Bcc, Bcc removed, From added if missing and -f given."""
    block = split_headers(normalize_newlines(raw))
    recipients = list(invocation.recipients)
    if invocation.extract_recipients:
        for address in addresses_in(block, "to", "cc", "bcc"):
            try:
                recipients.append(check_address(address))
            except Refused as refused:
                raise Failure(f"invalid recipient {address[:80]!r} in the headers: {refused.text}", EX_DATAERR) from None
        if not recipients:
            raise UsageError("-t given but the To, Cc and Bcc headers hold no recipient")
    block = block.without("bcc")
    if invocation.sender and not block.has("from"):
        block = block.with_prepended("From", _author(invocation.full_name or "", invocation.sender))
    return recipients, block.to_bytes()


def _author(name: str, sender: str) -> str:
    """The From field for -f (and -F). A UTF-8 address cannot be encoded (RFC 6532): it goes as it is, in
    Unicode, and so does the name beside it; the message needs SMTPUTF8 anyway."""
    if sender.isascii():
        return email.utils.formataddr((name, sender), "utf-8")
    from scriptmail.international.addresses import display  # here: an ASCII sender never needs it

    shown = display(sender)
    return f'"{email.utils.quote(name)}" <{shown}>' if name else shown


def exchange(path: Path, line: bytes, data: bytes) -> dict[str, Any] | None:
    """Send one request, return the daemon's answer; None if it could not be reached or vanished."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(EXCHANGE_TIMEOUT)
    try:
        try:
            sock.connect(str(path))
        except OSError:
            return None
        try:
            sock.sendall(line)
            if data:
                sock.sendall(data)
        except OSError:
            pass  # the daemon may have answered early (a refusal) and closed: read it below
        try:
            with sock.makefile("rb") as stream:
                answer = stream.readline(MAX_REPLY + 1)
        except OSError:
            return None
        if not answer.endswith(b"\n"):
            return None
        return decode_reply(answer)
    finally:
        sock.close()


def drop(maildrop: Path, line: bytes, data: bytes) -> Path:
    """Write tmp/<unique> (O_EXCL, 0600), fsync, rename into new/: pickup never sees half a file."""
    name = f"{time.time_ns()}.{os.getpid()}.{os.urandom(8).hex()}"
    temporary, final = maildrop / "tmp" / name, maildrop / "new" / name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=False) as stream:
            stream.write(line)
            stream.write(data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.rename(temporary, final)
    try:  # make the rename durable too; the caller may lack read access to the directory
        directory = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return final
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)
    return final


def send(invocation: Invocation, argv: Sequence[str], where: Locations) -> int:
    raw = sys.stdin.buffer.read(where.max_size + 1)
    if len(raw) > where.max_size:
        raise Failure(f"message larger than the limit of {where.max_size} bytes", EX_DATAERR)
    recipients, data = compose(invocation, raw)
    if len(data) > where.max_size:
        raise Failure(f"message larger than the limit of {where.max_size} bytes", EX_DATAERR)
    request = Request(
        op="send",
        sender=invocation.sender,
        recipients=tuple(recipients),
        extract=invocation.extract_recipients,
        cwd=working_directory(),
        argv=tuple(argv),
        size=len(data),
    )
    hand_over(where, request, data)
    return EX_OK


def working_directory() -> str:
    try:
        return os.getcwd()
    except OSError:
        return ""


def hand_over(where: Locations, request: Request, data: bytes) -> int | None:
    """Give one message to the daemon, else to the maildrop: its queue id, or None once it is in the
    maildrop (durable either way). A refusal or a double failure raises Failure."""
    line = encode_request(request)
    reply = exchange(where.socket, line, data)
    if reply is not None and (reply["ok"] or reply["code"] != EX_TEMPFAIL):
        if reply["ok"]:
            queue_id = reply.get("queue_id")
            return queue_id if type(queue_id) is int else 0
        raise Failure(reply["error"], reply["code"])
    try:
        drop(where.maildrop, line, data)
    except OSError as error:
        reason = "is not reachable" if reply is None else "cannot queue now"
        raise Failure(f"the mail daemon {reason} and the maildrop failed: {error}", EX_TEMPFAIL) from None
    return None


def list_queue(where: Locations) -> int:
    """`-bp`: the caller's own queue, as the daemon lists it for the caller's uid."""
    reply = exchange(where.socket, encode_request(Request(op="list")), b"")
    if reply is None:
        raise Failure("the mail daemon is not reachable; cannot list the queue", EX_UNAVAILABLE)
    if not reply["ok"]:
        raise Failure(reply["error"], reply["code"])
    rows = reply.get("rows")
    sys.stdout.write(format_queue(rows if isinstance(rows, list) else []))
    return EX_OK


def verify(addresses: Sequence[str]) -> int:
    """`-bv`: say for each address whether scriptmail would take it; nothing is sent."""
    status = EX_OK
    for address in addresses:
        try:
            check_address(address)
        except Refused as refused:
            print(f"{_printable(address)}: undeliverable: {refused.text}")
            status = EX_DATAERR
        else:
            print(f"{address}: deliverable")
    return status


def _printable(text: str) -> str:
    return text if text.isprintable() and len(text) <= 300 else repr(text[:300])


def flush(where: Locations, site: str) -> int:
    """`-q`, `-qR<domain>`: the daemon makes the caller's own deferred mail due now."""
    reply = exchange(where.socket, encode_request(Request(op="flush", site=site)), b"")
    if reply is None:
        raise Failure("the mail daemon is not reachable; cannot retry the queue now", EX_UNAVAILABLE)
    if not reply["ok"]:
        raise Failure(reply["error"], reply["code"])
    return EX_OK  # silent, as Postfix's: a cron job running it must not mail its output every time


def format_queue(rows: list[Any]) -> str:
    """mailq's layout: one block per message, a reason in brackets above a recipient still waiting."""
    rows = [row for row in rows if isinstance(row, dict)]
    if not rows:
        return "Mail queue is empty\n"
    marks = {"held": "!", "sending": "*"}
    lines = ["-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------"]
    total = 0
    for row in rows:
        size = _int(row.get("size"))
        total += size
        arrival = time.strftime("%a %b %d %H:%M:%S", time.localtime(_int(row.get("arrival"))))
        recipients = [item for item in row.get("recipients") or [] if isinstance(item, dict)]
        mark = next((marks[r.get("status")] for r in recipients if r.get("status") in marks), "")
        queue_id = f"{row.get('queue_id', '?')}{mark}"
        lines.append(f"{queue_id:<11} {size:>8} {arrival:>20}  {row.get('sender', '')}")
        for recipient in recipients:
            if recipient.get("reason"):
                lines.append(f"{'':<42}({str(recipient['reason'])[:200]})")
            lines.append(f"{'':<42}{recipient.get('address', '')}")
        lines.append("")
    count = len(rows)
    lines.append(f"-- {(total + 1023) // 1024} Kbytes in {count} Request{'s' if count != 1 else ''}.")
    return "\n".join(lines) + "\n"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the sysexits code (the console script passes it to sys.exit)."""
    argv = list(sys.argv if argv is None else argv)
    program = os.path.basename(argv[0]) if argv else "sendmail"
    args = argv[1:]
    if program == "mailq":
        args = ["-bp", *args]
    elif program == "newaliases":
        args = ["-bi", *args]
    try:
        invocation = parse_args(args)
        if invocation.mode is Mode.ALIASES:
            return EX_OK  # no alias database: hostings send, they do not receive
        if invocation.mode is Mode.VERIFY:
            return verify(invocation.recipients)
        where = find(os.environ)
        if invocation.mode is Mode.FLUSH:
            return flush(where, invocation.site)
        if invocation.mode is Mode.LIST:
            return list_queue(where)
        if invocation.mode is Mode.SMTP:
            from scriptmail.intake.sendmail_smtp import converse  # aiosmtpd and asyncio only for -bs

            return converse(argv, where)
        return send(invocation, argv, where)
    except (UsageError, Failure, ConfigError) as error:
        print(f"{program}: {error.message}", file=sys.stderr)
        return error.code
    except Exception as error:  # noqa: BLE001 - a script gets a code and a line, not a traceback
        print(f"{program}: internal error: {error}", file=sys.stderr)
        return EX_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
