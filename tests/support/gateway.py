"""Running a whole scriptmail Gateway in a thread of the test process, on loopback ports."""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from scriptmail.app import PARTS, Gateway, run_async
from scriptmail.config import DeliverySettings, DomainsSettings, IntakeSettings, Settings, WebSettings
from scriptmail.store import log as store_log

HOSTING = "shop.example"
PASSWORD = "s3cret-pass"


def node_settings(database_url: str, directory: Path, routes: dict[str, str] | None = None, **delivery: object) -> Settings:
    """Settings for a test node: every listener on an ephemeral loopback port, files under `directory`."""
    return Settings(
        database_url=database_url,
        hostname="gateway.test",
        node="test-node",
        intake=IntakeSettings(
            listen="127.0.0.1:0",
            socket=directory / "intake.sock",
            maildrop=directory / "maildrop",
            maildrop_interval=0.2,
        ),
        delivery=DeliverySettings(routes=routes or {}, poll_interval=0.1, **delivery),
        web=WebSettings(listen="127.0.0.1:0"),
        domains=DomainsSettings(key_file=directory / "dkim-master.key"),
    )


class RunningGateway:
    def __init__(self, settings: Settings, parts: tuple[str, ...] = PARTS, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.gateway = Gateway(settings, parts, clock)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def smtp_port(self) -> int:
        assert self.gateway.smtp_port is not None
        return self.gateway.smtp_port

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await self.gateway.run(lambda _: self._ready.set())

        try:
            run_async(main())
        except BaseException as error:  # surfaced by start()
            self._error = error
            self._ready.set()

    def start(self) -> RunningGateway:
        self._thread.start()
        if not self._ready.wait(30) or self._error:
            raise RuntimeError(f"gateway did not start: {self._error!r}")
        return self

    def call(self, coroutine, timeout: float = 60.0):
        """Run a coroutine on the gateway's event loop (e.g. one scheduler round) and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.gateway.stop)
        self._thread.join(30)


def submit(port: int, message: bytes, to: list[str], sender: str = "web@shop.example") -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        refused = client.sendmail(sender, to, message)
        assert not refused
        return client.noop()[1].decode()


def wait_status(engine, status: str, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            rows = store_log.recent(connection, limit=10_000)
        matching = [row for row in rows if row["status"] == status]
        if len(matching) >= count:
            return matching
        time.sleep(0.05)
    raise AssertionError(f"expected {count} recipient(s) {status}, log has {[(r['recipient'], r['status'], r['last_text']) for r in rows]}")
