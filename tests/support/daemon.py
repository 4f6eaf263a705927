"""scriptmail as a real process (`scriptmail serve`), for tests that kill it or run several."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_runs = itertools.count(1)
SCRIPTMAIL = str(Path(sys.executable).with_name("scriptmail"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(
    path: Path, database_url: str, sink_port: int, smtp_port: int, extra: str = "", domains: tuple[str, ...] = ("sink.test",)
) -> Path:
    """A configuration whose `domains` are routed to the sink."""
    directory = path.parent
    routes = ", ".join(f'"{domain}" = "127.0.0.1:{sink_port}"' for domain in domains)
    path.write_text(
        f'database_url = "{database_url}"\n'
        'hostname = "gateway.test"\n'
        "[intake]\n"
        f'listen = "127.0.0.1:{smtp_port}"\n'
        f'socket = "{directory / "intake.sock"}"\n'
        f'maildrop = "{directory / "maildrop"}"\n'
        'trusted_networks = {"127.0.0.0/8" = "shop.example"}\n'
        '[web]\nlisten = "127.0.0.1:0"\n'
        "[delivery]\n"
        f"routes = {{{routes}}}\n"
        "backoff_min = 1\nbackoff_max = 2\npoll_interval = 0.1\n" + extra
    )
    return path


class Daemon:
    def __init__(self, config: Path, node: str, parts: str = "intake,delivery,maildrop", port: int | None = None) -> None:
        self.config, self.node, self.parts, self.port = config, node, parts, port
        self.process: subprocess.Popen | None = None
        self.log = config.parent / f"{node}-{next(_runs)}.log"

    def start(self, wait: bool = True) -> Daemon:
        env = os.environ | {"SCRIPTMAIL_NODE": self.node}
        self.process = subprocess.Popen(
            [SCRIPTMAIL, "--config", str(self.config), "serve", "--no-demo", "--parts", self.parts],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.config.parent,
        )
        return self.wait_ready() if wait else self

    def wait_ready(self) -> Daemon:
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"scriptmail exited: {self.log.read_text()[-2000:]}")
            if self.port is None:
                if "scriptmail is running" in self.log.read_text():
                    return self
            else:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("scriptmail did not start in 30 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
