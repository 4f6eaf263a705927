"""A slow-down is shared: two real delivery processes on one store send to one loopback receiving
server for two routed domains. The server answers 421 once, to one process, for one domain: both
processes pause that site within about a second and then send to it at its slowed rate, while the
other domain keeps its configured rate. Both rates are measured."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from scriptmail.model import Origin, Submission
from scriptmail.store.engine import for_writing
from scriptmail.store.hostings import find_hosting
from scriptmail.store.queue import insert_submission
from scriptmail.store.schema import delivery_sites
from tests.support.daemon import Daemon, write_config
from tests.support.gateway import HOSTING, wait_status
from tests.support.sink import Behaviour, Sink

pytestmark = pytest.mark.slow

COUNT = 100  # recipients per domain
PER_MINUTE = 600  # 10 a second per site; slowed once: 5 a second
PAUSE = 4.0
REFUSE_AFTER = 20  # slow.test recipients accepted before the 421
SITES = (
    "throttle_pause = {pause}\nslow_seconds = 120\nbatch_size = 10\n"
    '[delivery.sites.fastsite]\ndomains = ["fast.test"]\nconnections = 2\nper_minute = {per_minute}\n'
    '[delivery.sites.slowsite]\ndomains = ["slow.test"]\nconnections = 2\nper_minute = {per_minute}\n'
)


def queue_for(engine: Engine, domains: tuple[str, ...], count: int) -> None:
    with for_writing(engine).begin() as connection:  # a plain BEGIN that reads, then writes, fails at once if a daemon wrote in between
        hosting = find_hosting(connection, name=HOSTING)
        for number in range(count):
            for domain in domains:
                insert_submission(
                    connection,
                    Submission(
                        hosting_id=hosting.id, envelope_from="web@shop.example", recipients=(f"r{number}@{domain}",),
                        data=f"Subject: {number}\r\n\r\nbody\r\n".encode(), origin=Origin.SMTP, client="127.0.0.1",
                    ),
                    time.time(),
                )  # fmt: skip


class Watch:
    """When each RCPT arrives per domain; one to slow.test gets a 421."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {"fast.test": [], "slow.test": []}
        self.refused_at = 0.0
        self.lock = threading.Lock()

    def rcpt(self, address: str) -> str:
        domain = address.rpartition("@")[2]
        with self.lock:
            now = time.monotonic()
            if domain == "slow.test" and not self.refused_at and len(self.times[domain]) == REFUSE_AFTER:
                self.refused_at = now
                return "421 4.7.0 Try again later, rate limited"
            self.times[domain].append(now)
        return "250 2.1.5 ok"


def per_second(times: list[float], burst: float) -> float:
    return (len(times) - burst) / (times[-1] - times[0])


def test_a_slowdown_told_to_one_process_slows_every_process_and_the_other_site_keeps_its_rate(
    shop: Engine, database_url: str, tmp_path: Path, sink: Sink
) -> None:
    watch = Watch()
    sink.behaviour = Behaviour(rcpt=watch.rcpt, delay=0.01)
    extra = SITES.format(pause=PAUSE, per_minute=PER_MINUTE)
    config = write_config(
        tmp_path / "scriptmail.toml", database_url, sink.port, 0, extra=extra, domains=("fast.test", "slow.test")
    )
    daemons = [Daemon(config, node, parts="delivery").start(wait=False) for node in ("node-a", "node-b")]
    try:
        for daemon in daemons:
            daemon.wait_ready()
        queue_for(shop, ("fast.test", "slow.test"), COUNT)
        wait_status(shop, "sent", 2 * COUNT, timeout=90)
        with shop.connect() as connection:
            rows = connection.execute(
                select(delivery_sites.c.node, delivery_sites.c.data).where(delivery_sites.c.name == "slowsite")
            ).all()
    finally:
        for daemon in daemons:
            daemon.stop()
    seen = {node: json.loads(data) for node, data in rows}
    fast, slow, told = watch.times["fast.test"], watch.times["slow.test"], watch.refused_at
    before = [t for t in slow if t < told]
    spreading = [t for t in slow if told <= t <= told + 1.5]  # in flight, or sent before the news arrived
    stray = [round(t - told, 2) for t in slow if told + 1.5 < t < told + PAUSE - 0.2]
    after = [t for t in slow if t >= told + PAUSE - 0.2]
    fast_rate = per_second(fast, PER_MINUTE / 60)
    slow_rate = per_second(after, PER_MINUTE / 2 / 60)
    last = f"{spreading[-1] - told:.2f}" if spreading else "-"
    print(
        f"\nfast site: {len(fast)} recipients, {fast_rate:.1f}/s; slowed site: {len(before)} before the 421 at "
        f"{per_second(before, PER_MINUTE / 60):.1f}/s, {len(spreading)} in the next 1.5 s (the last {last} s after it), "
        f"none in the rest of the {PAUSE:g} s pause but {stray}, then {len(after)} at {slow_rate:.1f}/s "
        f"(limit {PER_MINUTE / 2 / 60:g}/s); per node (level, slowdowns): { {n: (d['level'], d['slowdowns']) for n, d in seen.items()} }"
    )
    assert set(seen) == {"node-a", "node-b"}
    # Only one process was told (one complaint), yet both show the site slowed, with the reply.
    assert sorted(d["slowdowns"] for d in seen.values()) == [0, 1]
    assert all(d["level"] == 1 and "Try again later" in d["reason"] for d in seen.values())
    assert all(d["limits"]["per_minute"] == PER_MINUTE // 2 for d in seen.values())
    # Neither process sent to the site during its pause, once a second had passed for the news to spread...
    assert stray == []
    # ...and after it both together kept to the halved rate, while the other site kept its own.
    assert slow_rate <= PER_MINUTE / 2 / 60 * 1.15
    assert fast_rate >= 0.5 * PER_MINUTE / 60
    assert len(fast) == COUNT and len(before) + len(spreading) + len(after) == COUNT
