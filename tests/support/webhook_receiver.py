"""A webhook receiver on loopback that checks every request with the `standardwebhooks` package
(an implementation of the specification independent of ours) and answers as a test asks."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    id: str
    body: dict
    headers: dict[str, str]
    verified: bool


@dataclass
class WebhookReceiver:
    """`answers` is consumed one per request (status codes, or "huge", "slow", "redirect:URL");
    once it is empty every request gets 204."""

    secret: str = ""
    answers: list = field(default_factory=list)
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    slow_seconds: float = 30.0

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                verified = True
                try:
                    Webhook(receiver.secret).verify(data, headers)
                except (WebhookVerificationError, ValueError):
                    verified = False
                receiver.received.append(Received(headers.get("webhook-id", ""), json.loads(data or b"{}"), headers, verified))
                answer = receiver.answers.pop(0) if receiver.answers else 204
                if answer == "huge":
                    self.send_response(200)
                    self.send_header("content-length", str(50 * 1024 * 1024))
                    self.end_headers()
                    try:
                        for _ in range(50 * 1024):
                            self.wfile.write(b"x" * 1024)
                    except OSError:
                        pass
                    return
                if answer == "slow":
                    time.sleep(receiver.slow_seconds)
                    answer = 204
                if isinstance(answer, str) and answer.startswith("redirect:"):
                    self.send_response(307)
                    self.send_header("location", answer.removeprefix("redirect:"))
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                text = b"" if answer == 204 else f"answer {answer}".encode()
                self.send_response(int(answer))
                self.send_header("content-length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class GarbageServer:
    """A TCP server that answers anything with bytes that are not HTTP."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket()
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                connection.recv(65536)
                connection.sendall(b"220 mail.example ESMTP ready\r\n\x00\xff garbage\r\n")
            except OSError:
                pass
            connection.close()

    def stop(self) -> None:
        self._sock.close()
