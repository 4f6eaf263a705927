"""Several delivery processes on one PostgreSQL queue: every recipient delivered exactly once."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from scriptmail.model import Origin, Submission
from scriptmail.store.hostings import find_hosting
from scriptmail.store.queue import insert_submission
from scriptmail.store.schema import attempts, recipients
from tests.support.daemon import Daemon, write_config
from tests.support.gateway import HOSTING
from tests.support.sink import Behaviour, Sink

pytestmark = pytest.mark.slow


def test_a_second_process_cannot_take_a_live_node_name(shop: Engine, database_url: str, tmp_path: Path, sink: Sink) -> None:
    config = write_config(tmp_path / "scriptmail.toml", database_url, sink.port, 0)
    first = Daemon(config, "mx1", parts="delivery").start()
    second = Daemon(config, "mx1", parts="delivery")
    try:
        with pytest.raises(RuntimeError, match="in use by pid"):
            second.start()
        assert second.process.returncode == 71
    finally:
        second.stop()  # only does something if it wrongly started
        first.stop()
    Daemon(config, "mx1", parts="delivery").start().stop()  # free again once the first has stopped


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_delivery_processes_deliver_2000_recipients_exactly_once(shop: Engine, database_url: str, tmp_path: Path, sink: Sink) -> None:
    with shop.begin() as connection:
        hosting = find_hosting(connection, name=HOSTING)
        now = time.time()
        for number in range(200):
            insert_submission(
                connection,
                Submission(
                    hosting_id=hosting.id,
                    envelope_from="web@shop.example",
                    recipients=tuple(f"r{number}-{n}@sink.test" for n in range(10)),
                    data=f"Subject: m{number}\r\n\r\nbody\r\n".encode(),
                    origin=Origin.SMTP,
                    client="127.0.0.1",
                ),
                now,
            )
    sink.behaviour = Behaviour(delay=0.002)
    config = write_config(tmp_path / "scriptmail.toml", database_url, sink.port, 0, extra="batch_size = 20\n")
    daemons = [Daemon(config, node, parts="delivery").start(wait=False) for node in ("node-a", "node-b")]
    try:
        for daemon in daemons:
            daemon.wait_ready()
        deadline = time.monotonic() + 120
        sent = 0
        while time.monotonic() < deadline and sent < 2000:
            time.sleep(0.2)
            with shop.connect() as connection:
                sent = connection.execute(select(func.count()).select_from(recipients).where(recipients.c.status == "sent")).scalar_one()
        assert sent == 2000
        time.sleep(0.5)
    finally:
        for daemon in daemons:
            daemon.stop()

    delivered = collections.Counter(address for message in sink.messages for address in message.recipients)
    assert len(delivered) == 2000
    assert set(delivered.values()) == {1}
    with shop.connect() as connection:
        per_node = dict(connection.execute(select(attempts.c.node, func.count()).group_by(attempts.c.node)).all())
    assert set(per_node) == {"node-a", "node-b"}, per_node
    assert sum(per_node.values()) == 2000
    print(f"deliveries per node: {per_node}")
