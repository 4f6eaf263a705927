"""The group-commit writer: many operations per commit, one failure isolated, outages reported."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import Engine, text

from scriptmail.store.writer import StoreUnavailable, Writer


def _insert(n: int):
    return lambda connection: connection.execute(text("INSERT INTO notes (n) VALUES (:n)"), {"n": n}).rowcount


async def test_concurrent_operations_share_commits(writer: Writer) -> None:
    results = await asyncio.gather(*(writer.submit(_insert(n)) for n in range(200)))
    assert results == [1] * 200
    assert writer.commits < 200


async def test_a_failing_operation_fails_alone(writer: Writer, engine: Engine) -> None:
    await writer.submit(_insert(1))
    outcomes = await asyncio.gather(writer.submit(_insert(2)), writer.submit(_insert(1)), writer.submit(_insert(3)), return_exceptions=True)
    assert outcomes[0] == 1 and outcomes[2] == 1
    assert isinstance(outcomes[1], Exception) and not isinstance(outcomes[1], StoreUnavailable)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM notes ORDER BY n")).scalars().all() == [1, 2, 3]


async def test_an_unusable_database_is_reported_as_unavailable(writer: Writer) -> None:
    """Intake answers 451 to StoreUnavailable: the client keeps the message and tries again."""
    with pytest.raises(StoreUnavailable):
        await writer.submit(lambda connection: connection.execute(text("SELECT * FROM no_such_table")))


async def test_bulk_operations_run_once_per_commit(writer: Writer) -> None:
    calls: list[int] = []

    def bulk(connection, items: list[int]) -> list[int]:
        calls.append(len(items))
        return [item * 2 for item in items]

    assert await asyncio.gather(*(writer.submit_bulk(bulk, n) for n in range(50))) == [n * 2 for n in range(50)]
    assert sum(calls) == 50 and len(calls) < 50


def test_a_transaction_undone_to_break_a_deadlock_runs_again(writer: Writer, engine: Engine) -> None:
    """PostgreSQL aborts one side of a deadlock; the writer's side runs again and commits, where
    it had answered StoreUnavailable (and intake 451) before."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no deadlock between writers")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO notes (n) VALUES (1), (2)"))
    waiting = threading.Event()
    runs: list[int] = []

    def crossing(connection) -> int:
        runs.append(1)
        connection.execute(text("UPDATE notes SET n = n WHERE n = 1"))
        waiting.set()
        connection.execute(text("UPDATE notes SET n = n WHERE n = 2"))  # held by the other side
        return len(runs)

    with engine.connect() as other:
        other.execute(text("UPDATE notes SET n = n WHERE n = 2"))
        done = writer.submit_nowait(crossing)
        assert waiting.wait(10)
        time.sleep(0.3)  # the writer waits first, so its backend detects the deadlock and is undone
        other.execute(text("UPDATE notes SET n = n WHERE n = 1"))
        other.commit()
    assert done.result(20) == 2


def test_a_connection_the_database_dropped_between_commits_is_made_again(writer: Writer, engine: Engine) -> None:
    """Each writer thread keeps its connection; after a PostgreSQL restart (every backend
    terminated) the next operation commits on a new one instead of failing with a 451."""
    if engine.dialect.name != "postgresql":
        pytest.skip("an SQLite connection is a file: nothing drops it")
    backends: set[int] = set()

    def insert_noting_backend(n: int):
        def operation(connection) -> int:
            backends.add(connection.execute(text("SELECT pg_backend_pid()")).scalar())
            return connection.execute(text("INSERT INTO notes (n) VALUES (:n)"), {"n": n}).rowcount

        return operation

    for n in range(4):  # both threads have made their connection
        assert writer.submit_nowait(insert_noting_backend(n)).result(10) == 1
    with engine.connect() as admin:
        killed = admin.execute(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": sorted(backends)}
        ).scalar()
    assert killed == len(backends)
    time.sleep(0.2)
    assert [writer.submit_nowait(insert_noting_backend(n)).result(10) for n in range(10, 14)] == [1] * 4
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM notes")).scalar() == 8
