"""SIGKILL under load: every message that got 250 is delivered after restart, and only the
deliveries that were in flight at the kill may arrive twice."""

from __future__ import annotations

import collections
import smtplib
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from scriptmail.model import FINAL_STATUSES
from scriptmail.store.schema import messages, recipients
from tests.support.daemon import Daemon, free_port, write_config
from tests.support.sink import Behaviour, Sink

pytestmark = pytest.mark.slow


def _load(port: int, worker: int, accepted: list[str], stop: threading.Event) -> None:
    number = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                while not stop.is_set():
                    subject = f"load-{worker}-{number}"
                    number += 1
                    client.sendmail("web@shop.example", ["buyer@sink.test"], f"Subject: {subject}\r\n\r\nbody\r\n".encode())
                    accepted.append(subject)
        except (smtplib.SMTPException, OSError):
            time.sleep(0.05)  # the daemon is gone: what was not acknowledged is the client's to retry


def test_sigkill_under_load_loses_nothing_acknowledged(shop: Engine, database_url: str, tmp_path: Path, sink: Sink) -> None:
    sink.behaviour = Behaviour(delay=0.01)
    port = free_port()
    config = write_config(tmp_path / "scriptmail.toml", database_url, sink.port, port)
    daemon = Daemon(config, "crash-node", port=port).start()

    accepted: list[str] = []
    stop = threading.Event()
    clients = [threading.Thread(target=_load, args=(port, n, accepted, stop)) for n in range(6)]
    for client in clients:
        client.start()
    time.sleep(2.0)
    daemon.kill()
    stop.set()
    for client in clients:
        client.join(15)

    engine = shop
    with engine.connect() as connection:
        in_flight = set(
            connection.execute(
                select(messages.c.subject).join(recipients, recipients.c.message_id == messages.c.id).where(recipients.c.status == "sending")
            ).scalars()
        )
    assert accepted, "the load generator got no 250 at all"

    daemon = Daemon(config, "crash-node", port=port).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                open_rows = connection.execute(
                    select(func.count()).select_from(recipients).where(recipients.c.status.not_in([s.value for s in FINAL_STATUSES]))
                ).scalar_one()
            if open_rows == 0:
                break
            time.sleep(0.2)
        assert open_rows == 0
        time.sleep(0.5)
    finally:
        daemon.stop()

    counts = collections.Counter(
        message.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for message in sink.messages
    )
    missing = [subject for subject in accepted if subject not in counts]
    assert missing == []
    twice = {subject for subject, count in counts.items() if count > 1}
    assert twice <= in_flight, twice - in_flight
    print(f"accepted {len(accepted)}, delivered {len(counts)}, in flight at kill {len(in_flight)}, delivered twice {len(twice)}")
