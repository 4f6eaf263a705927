"""The API's per-token rate limit in the store: the one-statement upsert decides as the pure GCRA
does, two processes share one token's allowance, and the cost per request is measured."""

from __future__ import annotations

import math
import multiprocessing
import random
import time

import httpx2
import pytest
from sqlalchemy import Engine, create_engine

from scriptmail.store import accounts, rate_limits
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


def test_housekeeping_prunes_revoked_gone_and_idle_tokens_rows_and_keeps_a_live_tokens_allowance(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        live, revoked, idle = (accounts.create_token(connection, operator, label)[0] for label in ("live", "revoked", "idle"))
        accounts.revoke_token(connection, revoked)
    for token in (live, revoked, 9999):  # 9999: a token that no longer exists
        for _ in range(3):
            _take(engine, token, 100.0, 6, 3)  # each bucket empty until 130
    _take(engine, idle, 10.0, 6, 3)  # full again since 20
    with for_writing(engine).begin() as connection:
        assert rate_limits.prune(connection, 100.0) == 3
    with engine.connect() as connection:
        assert [row.token_id for row in connection.execute(rate_limits.api_rate_limits.select())] == [live]
    assert _take(engine, live, 100.0, 6, 3) == 10.0  # its allowance is spent still
    with for_writing(engine).begin() as connection:
        assert rate_limits.prune(connection, 100.0) == 0  # nothing more to prune


@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_the_schedulers_pruning_empties_the_rows_of_revoked_tokens_on_either_store(make_gateway) -> None:
    """On SQLite the rows live in the file beside the database, on PostgreSQL in its table: the
    hourly pruning reaches both, through real API calls."""
    gateway = make_gateway(parts=("web", "scheduler"), web={"api_rate_per_minute": 6, "api_burst": 3})
    with for_writing(gateway.engine).begin() as connection:
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        tokens = {label: accounts.create_token(connection, operator, label, scope="read") for label in ("kept", "revoked")}
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        for _, secret in tokens.values():
            assert [client.get("/1.0/admin/plans", headers={"Authorization": f"Bearer {secret}"}).status_code for _ in range(4)] == [200, 200, 200, 429]
    with for_writing(gateway.engine).begin() as connection:
        accounts.revoke_token(connection, tokens["revoked"][0])

    def rows() -> list[int]:
        if gateway.engine.dialect.name == "sqlite":
            source = rate_limits.beside(gateway.engine.url.database)
        else:
            source = gateway.engine
        with source.connect() as connection:
            return sorted(row.token_id for row in connection.execute(rate_limits.api_rate_limits.select()))

    assert rows() == sorted(token_id for token_id, _ in tokens.values())
    scheduler = gateway.gateway.scheduler
    assert gateway.call(scheduler.prune_rate_limits(time.time())) == 1
    assert rows() == [tokens["kept"][0]]
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30) as client:
        again = client.get("/1.0/admin/plans", headers={"Authorization": f"Bearer {tokens['kept'][1]}"})
    assert again.status_code == 429  # the live token's spent allowance was kept
    assert gateway.call(scheduler.prune_rate_limits(time.time() + 3600)) == 1  # an hour on, its bucket is full: the row goes
    assert rows() == []
