"""An HTTPS server on loopback for MTA-STS tests: it answers each path with what the test set,
status, headers and body, and records the requests (path, Host header, TLS name)."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/plain"})


class HttpsServer:
    def __init__(self, cert: Path, key: Path) -> None:
        self.replies: dict[str, Reply] = {}  # "host/path" -> Reply; unknown: 404
        self.requests: list[tuple[str, str, str | None]] = []  # (Host header, path, TLS server name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        names: dict[int, str | None] = {}

        def remember_name(sslsocket: ssl.SSLSocket, name: str | None, _context: ssl.SSLContext) -> None:
            names[id(sslsocket)] = name

        context.sni_callback = remember_name
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                host = (self.headers.get("Host") or "").split(":")[0]
                server.requests.append((host, self.path, names.get(id(self.connection))))
                reply = server.replies.get(f"{host}{self.path}", Reply(404, b"not here\n"))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                try:
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the client stopped reading, as it should past its limit

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, object]:
                raw, address = self.socket.accept()
                return context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False), address

            def finish_request(self, request, client_address) -> None:  # type: ignore[override]
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError):
                    return  # a client that refused our certificate
                super().finish_request(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> HttpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
