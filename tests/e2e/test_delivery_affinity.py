"""Each process delivers the mail it accepted, and wakes the others only when its own delivery is
full: with N processes, one claim per commit instead of N (issue 12, the herd on the store).

Two full processes share one store. Each routes sink.test to a receiving server of its own, so
the servers tell which process delivered what. Both poll the queue only every 30 s: whatever
the second process delivers sooner, it was told about."""

from __future__ import annotations

import smtplib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.daemon import Daemon, free_port, write_config
from tests.support.gateway import wait_status
from tests.support.sink import Behaviour, Sink

pytestmark = pytest.mark.slow

SLOW_POLL = 30


def _process(tmp_path: Path, name: str, database_url: str, sink: Sink, extra: str = "") -> Daemon:
    directory = tmp_path / name
    directory.mkdir()
    port = free_port()
    config = write_config(directory / "scriptmail.toml", database_url, sink.port, port, extra=extra)
    config.write_text(config.read_text().replace("poll_interval = 0.1", f"poll_interval = {SLOW_POLL}"))
    return Daemon(config, name, port=port)


def _send(port: int, number: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.sendmail("web@shop.example", [f"buyer{number}@sink.test"], f"Subject: {number}\r\n\r\nbody\r\n".encode())


@pytest.fixture
def other_sink() -> Sink:
    running = Sink().start()
    yield running
    running.stop()


def test_a_process_with_room_delivers_what_it_accepted_and_wakes_nobody(
    shop: Engine, database_url: str, tmp_path: Path, sink: Sink, other_sink: Sink
) -> None:
    first = _process(tmp_path, "first", database_url, sink).start()
    second = _process(tmp_path, "second", database_url, other_sink).start()
    try:
        time.sleep(0.5)  # both agents have found nothing due and wait
        for number in range(20):
            _send(first.port, number)
            time.sleep(0.02)  # within the first agent's claim delay: a woken second agent would take it
        wait_status(shop, "sent", 20, timeout=SLOW_POLL / 2)
    finally:
        first.stop()
        second.stop()
    assert len(sink.messages) == 20
    assert other_sink.messages == []


def test_a_process_whose_delivery_is_full_wakes_the_others(
    shop: Engine, database_url: str, tmp_path: Path, sink: Sink, other_sink: Sink
) -> None:
    sink.behaviour = Behaviour(delay=3)  # the first process's receiving server is slow
    first = _process(tmp_path, "first", database_url, sink, extra="batch_size = 1\n").start()  # room for 4
    second = _process(tmp_path, "second", database_url, other_sink).start()
    started = time.monotonic()
    try:
        time.sleep(0.5)
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(lambda number: _send(first.port, number), range(12)))
        wait_status(shop, "sent", 12, timeout=SLOW_POLL / 2)
    finally:
        first.stop()
        second.stop()
    assert time.monotonic() - started < SLOW_POLL / 2  # the second process did not wait for its poll
    assert other_sink.messages, "the second process was never told about the mail the first could not take"
    assert len(sink.messages) + len(other_sink.messages) == 12
