"""`scriptmail-sendmail -bs` as a client sees it: an SMTP session over the command's stdin and stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SENDMAIL = str(Path(sys.executable).with_name("scriptmail-sendmail"))


class PipeSession:
    """The same interface as raw_smtp.RawSession, so the bad-input tests read the same."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ("-bs",), command: list[str] | None = None) -> None:
        self.process = subprocess.Popen(
            command or [SENDMAIL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.greeting = self.reply()

    def reply(self) -> tuple[int, str]:
        lines = []
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline(4096)
            if not line:
                raise ConnectionError(f"sendmail -bs ended: {self.process.stderr.read().decode(errors='replace')}")
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(text[4:] for text in lines)

    def send(self, raw: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(raw)
        self.process.stdin.flush()

    def command(self, line: str | bytes) -> tuple[int, str]:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def close(self) -> int:
        try:
            self.command("QUIT")
        except (OSError, ConnectionError):
            pass
        return self.process.wait(30)
