"""The API's per-token rate limit in the store: the one-statement upsert decides as the pure GCRA
does, two processes share one token's allowance, and the cost per request is measured."""

from __future__ import annotations

import math
import multiprocessing
import random
import time

from sqlalchemy import Engine, create_engine

from scriptmail.store import rate_limits
from scriptmail.store.engine import for_writing
from scriptmail.web.throttle import gcra_take


def _take(engine: Engine, token: int, now: float, per_minute: int, burst: int) -> float:
    with for_writing(engine).begin() as connection:
        return rate_limits.take(connection, token, now, per_minute, burst)


def test_the_store_decides_every_request_as_the_pure_rule_does(engine: Engine) -> None:
    randomly = random.Random(14)
    for per_minute, burst in ((6, 3), (600, 60), (1, 1), (7, 2)):
        token = per_minute * 1000 + burst
        tat, now = None, 1_000.0
        for _ in range(150):
            now += randomly.choice((0.0, 0.0, 0.01, 0.5, 3.0, 9.9, 60.0))
            tat, expected = gcra_take(tat, now, per_minute, burst)
            assert math.isclose(_take(engine, token, now, per_minute, burst), expected, abs_tol=1e-6), (per_minute, burst, now)


def test_a_token_waits_as_long_as_its_bucket_says_and_no_limit_counts_nothing(engine: Engine) -> None:
    assert [_take(engine, 1, 100.0, 6, 3) for _ in range(4)] == [0.0, 0.0, 0.0, 10.0]
    assert _take(engine, 2, 100.0, 6, 3) == 0.0  # another token has its own bucket
    assert math.isclose(_take(engine, 1, 105.0, 6, 3), 5.0)
    assert _take(engine, 1, 110.0, 6, 3) == 0.0
    assert _take(engine, 3, 100.0, 0, 3) == 0.0
    with engine.connect() as connection:
        rows = connection.execute(rate_limits.api_rate_limits.select()).all()
    assert sorted(row.token_id for row in rows) == [1, 2]
    with for_writing(engine).begin() as connection:
        rate_limits.forget(connection, 1)
    assert _take(engine, 1, 110.0, 6, 3) == 0.0


def _hammer(url: str, start: float, count: int, queue) -> None:
    engine = create_engine(url)
    allowed = 0
    for _ in range(count):
        with for_writing(engine).begin() as connection:
            allowed += rate_limits.take(connection, 77, start, 60, 50) == 0.0
    engine.dispose()
    queue.put(allowed)


def test_two_processes_share_one_tokens_allowance(engine: Engine) -> None:
    """At one instant a token has `burst` requests, whichever processes make them."""
    from sqlalchemy import text

    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.execute(text("PRAGMA journal_mode=WAL"))
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_hammer, args=(url, 5_000.0, 80, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert sum(queue.get(timeout=5) for _ in workers) == 50


def test_cost_per_request(engine: Engine, capsys) -> None:
    """Measured, not asserted beyond sanity: the figure goes in the report."""
    runs = 300
    started = time.perf_counter()
    for i in range(runs):
        _take(engine, 9, 10_000.0 + i * 0.001, 1_000_000, 100_000)
    each = (time.perf_counter() - started) / runs
    with capsys.disabled():
        print(f"\nrate limit on {engine.dialect.name}: {each * 1e3:.3f} ms per request (own transaction)")
    assert each < 0.5
