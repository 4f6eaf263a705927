"""What the web remembers to answer the polled calls cheaply: who a token is (forgotten when
access narrows), the rate limit taken from the store a few places at a time, /metrics read at
most once a second."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from scriptmail.store import accounts, rate_limits
from scriptmail.store.engine import for_writing
from scriptmail.web.access_cache import AccessCache
from scriptmail.web.metrics import Scrapes
from scriptmail.web.rate_budget import RateBudget, batch_size

SCRIPTMAIL = str(Path(sys.executable).with_name("scriptmail"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_access_cache_forgets_after_its_lifetime_and_never_keeps_a_refusal() -> None:
    clock = Clock()
    cache = AccessCache(ttl=2.0, clock=clock)
    cache.put(("token", "a"), "caller")
    cache.put(("token", "b"), None)
    assert cache.get(("token", "a")) == "caller"
    assert cache.get(("token", "b")) is None
    clock.now += 1.9
    assert cache.get(("token", "a")) == "caller"
    clock.now += 0.2
    assert cache.get(("token", "a")) is None
    cache.put(("token", "a"), "caller")
    cache.clear("access", "-", "node")  # as the bus calls it
    assert cache.get(("token", "a")) is None


def test_a_flood_of_distinct_tokens_does_not_grow_the_cache_without_bound() -> None:
    cache = AccessCache()
    for index in range(25_000):
        cache.put(("token", str(index)), index)
    assert len(cache._entries) <= 10_000


def _ask(database: str, token_id: int, now: float, per_minute: int, burst: int, asked: list[int]):
    def ask(cost: int) -> float:
        asked.append(cost)
        return rate_limits.take_beside(database, token_id, now, per_minute, burst, cost)

    return ask


def test_processes_taking_places_in_batches_never_exceed_the_burst(tmp_path: Path) -> None:
    """Three processes' budgets on one store: together they get exactly the burst, in far fewer
    store calls than requests, and each refusal says how long to wait."""
    database = str(tmp_path / "store.db")
    burst, per_minute = 64, 60
    assert batch_size(burst) == 8
    budgets = [RateBudget() for _ in range(3)]
    now = 5000.0
    asked: list[int] = []
    outcomes, asks_while_allowed = [], 0
    for index in range(100):
        outcomes.append(budgets[index % 3].take(7, now, burst, _ask(database, 7, now, per_minute, burst, asked)))
        if outcomes[-1] == 0:
            asks_while_allowed = len(asked)
    given = sum(1 for wait in outcomes if wait == 0)
    assert burst - 3 * (batch_size(burst) - 1) <= given <= burst
    assert all(wait > 0 for wait in outcomes[-10:])
    assert asks_while_allowed <= burst // batch_size(burst) + 2 * 3 * batch_size(burst)
    assert asks_while_allowed < given / 2
    # A second later one more place has come back (60 a minute), and it is given.
    later = now + 1.0
    assert budgets[0].take(7, later, burst, _ask(database, 7, later, per_minute, burst, asked)) == 0


def test_places_held_by_a_process_expire(tmp_path: Path) -> None:
    """Places taken long ago are not spent later on top of a fresh burst."""
    budget = RateBudget()
    budget.keep(1, 8, now=100.0)
    assert budget.spend(1, 100.5)
    assert not budget.spend(1, 101.5)


def test_a_small_burst_is_asked_one_place_at_a_time() -> None:
    assert batch_size(1) == 1 and batch_size(7) == 1 and batch_size(60) == 7 and batch_size(100_000) == 16
    assert batch_size(60, 600) == 7  # the defaults: 10 a second, a batch of 7


def test_a_fast_token_takes_a_quarter_second_of_its_rate_at_once() -> None:
    """An eighth of the burst and a quarter second of the rate bound the batch, and 1024 does."""
    assert batch_size(100_000, 60_000) == 250
    assert batch_size(100_000, 1_000_000) == 1024
    assert batch_size(800, 1_000_000) == 100
    assert batch_size(100_000, 1_200) == 16


async def test_concurrent_scrapes_share_one_read_and_a_later_one_reads_again() -> None:
    clock = Clock()
    scrapes = Scrapes(max_age=1.0, clock=clock)
    reads = 0

    async def produce() -> bytes:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)
        return f"read {reads}".encode()

    bodies = await asyncio.gather(*(scrapes.body(produce) for _ in range(20)))
    assert reads == 1 and set(bodies) == {b"read 1"}
    clock.now += 0.5
    assert await scrapes.body(produce) == b"read 1"
    clock.now += 0.6
    assert await scrapes.body(produce) == b"read 2"


@pytest.fixture
def web(make_gateway, database_url: str, tmp_path: Path):
    running = make_gateway()
    with for_writing(running.engine).begin() as connection:
        customer = accounts.add_user(connection, "owner@shop.example", "a long password")
        accounts.grant(connection, customer, "shop.example")
        token_id, token = accounts.create_token(connection, customer, "panel")
    config = tmp_path / "cli.toml"
    config.write_text(f'database_url = "{database_url}"\n')
    return running, token_id, {"Authorization": f"Bearer {token}"}, config


def _until_refused(client: httpx2.Client, url: str, headers: dict, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if client.get(url, headers=headers).status_code == 401:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"the revoked token still worked after {seconds} s")


def test_a_token_revoked_by_the_cli_stops_working_at_once(web) -> None:
    """The web remembered the token; the CLI's revocation announces it on the bus, and the web
    forgets it without waiting out the cache's lifetime."""
    running, token_id, headers, config = web
    url = f"http://127.0.0.1:{running.gateway.web_port}/1.0/hosting/web/shop.example/email"
    with httpx2.Client(timeout=30) as client:
        assert client.get(url, headers=headers).status_code == 200
        done = subprocess.run([SCRIPTMAIL, "--config", str(config), "token", "revoke", str(token_id)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert _until_refused(client, url, headers, seconds=5) < 1.0


def test_a_grant_removed_in_the_store_stops_within_the_cache_lifetime(web) -> None:
    """Without any notice (a change made straight in the database), the cache's lifetime bounds it."""
    running, _, headers, _ = web
    url = f"http://127.0.0.1:{running.gateway.web_port}/1.0/hosting/web/shop.example/email"
    with httpx2.Client(timeout=30) as client:
        assert client.get(url, headers=headers).status_code == 200
        with for_writing(running.engine).begin() as connection:
            connection.exec_driver_sql("DELETE FROM user_hostings")
        started = time.monotonic()
        while client.get(url, headers=headers).status_code == 200:
            assert time.monotonic() - started < 2.5, "the removed grant still worked past the cache lifetime"
            time.sleep(0.05)
        assert client.get(url, headers=headers).status_code == 404


async def test_requests_that_find_the_budget_empty_ask_the_store_once(tmp_path: Path) -> None:
    """Twenty requests arrive with no place held: the first asks the store for a batch under the
    token's lock, the others spend from it. Before, each asked (and wrote) on its own."""
    database = str(tmp_path / "store.db")
    budget, asked, clock = RateBudget(), [], Clock()

    def slow_ask(now: float, cost: int) -> float:
        time.sleep(0.05)  # the store's answer takes a moment: the other requests arrive meanwhile
        return _ask(database, 7, now, 60_000, 1000, asked)(cost)

    waits = await asyncio.gather(*(budget.wait(7, clock, 1000, 60_000, slow_ask, in_thread=True) for _ in range(20)))
    assert waits == [0.0] * 20
    assert asked == [batch_size(1000, 60_000)] == [125]
