"""A site's limits hold for every delivery process together: two real delivery processes on one
store send to one loopback receiving server, whose site allows 2 connections and 10 recipients a
second. Without the shared counts each process would take the whole limit."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from scriptmail.model import Origin, Submission
from scriptmail.store import site_shares
from scriptmail.store.engine import for_writing
from scriptmail.store.hostings import find_hosting
from scriptmail.store.queue import insert_submission
from scriptmail.store.schema import attempts
from scriptmail.store.site_shares import SiteShares
from tests.support.daemon import Daemon, write_config
from tests.support.gateway import HOSTING, wait_status
from tests.support.sink import Behaviour, Received, Sink

pytestmark = pytest.mark.slow

PER_MINUTE = 600  # recipients: 10 a second, 10 in a row
SITE = '[delivery.sites.sinksite]\ndomains = ["sink.test"]\nconnections = {connections}\nper_minute = {per_minute}\n'


def queue_messages(engine: Engine, count: int, recipients: int, tag: str) -> None:
    with for_writing(engine).begin() as connection:  # a plain BEGIN that reads, then writes, fails at once if a daemon wrote in between
        hosting = find_hosting(connection, name=HOSTING)
        for number in range(count):
            insert_submission(
                connection,
                Submission(
                    hosting_id=hosting.id,
                    envelope_from="web@shop.example",
                    recipients=tuple(f"{tag}{number}-{n}@sink.test" for n in range(recipients)),
                    data=f"Subject: {tag}{number}\r\n\r\nbody\r\n".encode(),
                    origin=Origin.SMTP,
                    client="127.0.0.1",
                ),
                time.time(),
            )


class Watch:
    """What the receiving server sees: when each recipient arrives, and how many transactions
    (so connections) are under way at once."""

    def __init__(self) -> None:
        self.rcpts: list[float] = []
        self.busy = self.most = 0
        self.lock = threading.Lock()

    def rcpt(self, address: str) -> str:
        with self.lock:
            self.rcpts.append(time.monotonic())
            if address.partition("@")[0].endswith("-0"):  # a message's first recipient: a transaction starts
                self.busy += 1
                self.most = max(self.most, self.busy)
        return "250 2.1.5 ok"

    def data(self, message: Received) -> str:
        with self.lock:
            self.busy -= 1
        return "250 2.0.0 ok"


def test_two_processes_together_keep_a_sites_rate_and_connections(shop: Engine, database_url: str, tmp_path: Path, sink: Sink) -> None:
    watch = Watch()
    sink.behaviour = Behaviour(rcpt=watch.rcpt, data=watch.data, delay=0.05)
    extra = "batch_size = 10\n" + SITE.format(connections=2, per_minute=PER_MINUTE)
    config = write_config(tmp_path / "scriptmail.toml", database_url, sink.port, 0, extra=extra)
    queue_messages(shop, 50, 2, "r")  # 100 recipients, two per message: the rate counts recipients
    daemons = [Daemon(config, node, parts="delivery").start(wait=False) for node in ("node-a", "node-b")]
    try:
        for daemon in daemons:
            daemon.wait_ready()
        wait_status(shop, "sent", 100, timeout=60)
    finally:
        for daemon in daemons:
            daemon.stop()
    with shop.connect() as connection:
        per_node = dict(connection.execute(select(attempts.c.node, func.count()).group_by(attempts.c.node)).all())
    assert set(per_node) == {"node-a", "node-b"}, per_node  # both processes sent
    spent = watch.rcpts[-1] - watch.rcpts[0]
    rate = (len(watch.rcpts) - PER_MINUTE / 60) / spent  # the first second's burst aside
    print(f"\ntwo processes, one site of 10 recipients/s and 2 connections: {len(watch.rcpts)} recipients in "
          f"{spent:.1f} s, {rate:.1f}/s after the burst; at most {watch.most} transactions at once; per node {per_node}")  # fmt: skip
    assert len(watch.rcpts) == 100
    assert rate <= PER_MINUTE / 60 * 1.15  # each process on its own would have taken up to 10/s
    assert watch.most <= 2


def test_a_killed_process_holds_a_sites_connection_only_until_its_lease_runs_out(
    shop: Engine, database_url: str, tmp_path: Path, sink: Sink
) -> None:
    stalled = threading.Event()

    def data(message: Received) -> str:
        return "250 2.0.0 ok"

    def rcpt(address: str) -> str:
        if address.startswith("stuck"):
            stalled.set()
        return "250 2.1.5 ok"

    sink.behaviour = Behaviour(rcpt=rcpt, data=data, delay=0)
    extra = "site_lease = 3\n" + SITE.format(connections=1, per_minute=0)
    configs = []
    for node in ("a", "b"):
        (tmp_path / node).mkdir()
        configs.append(write_config(tmp_path / node / "scriptmail.toml", database_url, sink.port, 0, extra=extra))
    first = Daemon(configs[0], "node-a", parts="delivery").start()
    second = None
    try:
        sink.behaviour.delay = 600  # node-a's transaction hangs at the final dot, its connection open
        queue_messages(shop, 1, 1, "stuck")
        assert stalled.wait(30)
        time.sleep(0.3)
        shares = SiteShares(shop)
        assert shares.run(site_shares.open_connections, time.time()) == {"sinksite": 1}
        first.kill()
        killed_at = time.monotonic()
        sink.behaviour.delay = 0
        second = Daemon(configs[1], "node-b", parts="delivery").start()
        queue_messages(shop, 1, 1, "after")
        messages = sink.wait_for(1, timeout=30)
        waited = time.monotonic() - killed_at
        print(f"\nnode-b sent {waited:.1f} s after node-a was killed holding the site's only connection (lease 3 s)")
        assert [m.recipients for m in messages] == [["after0-0@sink.test"]]
        assert waited >= 1.5  # not before node-a's lease ran out (renewed each second until the kill)...
        assert waited < 15  # ...and soon after it
    finally:
        if second is not None:
            second.stop()
        first.stop()
