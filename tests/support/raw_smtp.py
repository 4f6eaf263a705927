"""A raw SMTP client for hostile-input tests: sends exactly the bytes it is given."""

from __future__ import annotations

import base64
import socket


class RawSession:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=15)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = self.file.readline(4096)
            if not line:
                raise ConnectionError("server closed the connection")
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(text[4:] for text in lines)

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def command(self, line: str | bytes) -> tuple[int, str]:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def login(self, user: str, password: str) -> tuple[int, str]:
        self.command("EHLO client.test")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.command(f"AUTH PLAIN {token}")

    def close(self) -> None:
        try:
            self.command("QUIT")
        except (OSError, ConnectionError):
            pass
        self.sock.close()
