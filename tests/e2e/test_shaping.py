"""Traffic shaping with real parts: a gateway, two loopback receiving servers for two routed
domains, one of which answers 421 "try again later" for a while. Both rates are measured."""

from __future__ import annotations

import smtplib
import time

import pytest
from sqlalchemy import Engine

from scriptmail.config import SiteSettings
from scriptmail.store import delivery_sites
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, node_settings, wait_status
from tests.support.sink import Behaviour, Sink

COUNT = 80
PER_MINUTE = 1200  # 20 a second for each site


@pytest.fixture
def sinks() -> dict[str, Sink]:
    running = {"fast": Sink().start(), "slow": Sink().start()}
    yield running
    for sink in running.values():
        sink.stop()


def rcpt_log(sink: Sink, refuse: dict[str, bool]) -> list[float]:
    """Record when each RCPT arrives; answer 421 while refuse['on']."""
    seen: list[float] = []

    def rcpt(address: str) -> str:
        seen.append(time.monotonic())
        return "421 4.7.0 Try again later, rate limited" if refuse["on"] else "250 2.1.5 ok"

    sink.behaviour = Behaviour(rcpt=rcpt)
    return seen


def rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def submit_many(port: int, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        for n in range(count):
            message = f"Subject: n{n}\r\nMessage-ID: <s{n}@shop.example>\r\n\r\nhello {n}\r\n".encode()
            assert not client.sendmail("web@shop.example", [f"a{n}@fast.test", f"b{n}@slow.test"], message)


def test_a_site_that_says_421_slows_down_alone_and_recovers(
    database_url: str, shop: Engine, tmp_path, sinks: dict[str, Sink]
) -> None:
    refuse = {"on": True}
    fast_rcpts = rcpt_log(sinks["fast"], {"on": False})
    slow_rcpts = rcpt_log(sinks["slow"], refuse)
    settings = node_settings(
        database_url,
        tmp_path,
        routes={"fast.test": f"127.0.0.1:{sinks['fast'].port}", "slow.test": f"127.0.0.1:{sinks['slow'].port}"},
        backoff_min=1,
        backoff_max=2,
        slow_seconds=1.5,
        throttle_pause=0.5,
        sites={
            "fastsite": SiteSettings(domains=["fast.test"], per_minute=PER_MINUTE),
            "slowsite": SiteSettings(domains=["slow.test"], per_minute=PER_MINUTE),
        },
    )
    gateway = RunningGateway(settings).start()
    try:
        submit_many(gateway.smtp_port, COUNT)
        sinks["fast"].wait_for(COUNT, timeout=30)
        fast = rate([m.at for m in sinks["fast"].messages])
        window = (fast_rcpts[0], fast_rcpts[-1])
        slow_in_window = [t for t in slow_rcpts if window[0] <= t <= window[1]]
        slow = len(slow_in_window) / (window[1] - window[0])
        shaper = gateway.gateway.agent.shaper
        view = {v.name: v for v in shaper.views(time.time())}
        print(f"\nfast site: {fast:.1f} msg/s delivered; slowed site: {slow:.1f} attempts/s over the same "
              f"{window[1] - window[0]:.2f} s ({len(slow_in_window)} attempts), level {view['slowsite'].level}")  # fmt: skip
        # The fast site kept (about) its configured rate: 20/s, plus a second's burst at the start...
        assert fast >= 0.5 * PER_MINUTE / 60  # on a loaded 2-core machine, PostgreSQL: 16-25/s seen
        assert view["fastsite"].level == 0 and view["fastsite"].slowdowns == 0
        # ...while the site that said 421 was slowed by itself, with the reply as the reason.
        assert slow < fast / 4
        assert view["slowsite"].slowdowns >= 1 and view["slowsite"].level >= 1
        assert "Try again later" in view["slowsite"].reason
        # The store shows it too, for the CLI, the operator's pages and the metrics of every node.
        with shop.connect() as connection:
            shown = {row["name"]: row for row in delivery_sites.current(connection, "site", time.time())}
        assert shown["slowsite"]["level"] >= 1 and "Try again later" in shown["slowsite"]["reason"]
        assert shown["fastsite"]["level"] == 0 and shown["slowsite"]["limits"]["per_minute"] < PER_MINUTE

        # The site stops complaining: it recovers by itself and every recipient arrives.
        refuse["on"] = False
        recovered_at = time.monotonic()
        sinks["slow"].wait_for(COUNT, timeout=30)
        slow_after = rate([m.at for m in sinks["slow"].messages])
        print(
            f"slowed site after it stopped answering 421: all {COUNT} in {time.monotonic() - recovered_at:.1f} s, {slow_after:.1f} msg/s"
        )
        wait_status(shop, "sent", 2 * COUNT)
        deadline = time.monotonic() + 10
        while shaper.state("slowsite", time.time()).level and time.monotonic() < deadline:
            time.sleep(0.1)
        assert shaper.state("slowsite", time.time()).level == 0
    finally:
        gateway.stop()
