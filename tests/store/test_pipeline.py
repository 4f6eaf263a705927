"""Writes queued for the commit's round trip (store.pipeline), through the real writer."""

from __future__ import annotations

from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select
from sqlalchemy.exc import IntegrityError

from scriptmail.store import pipeline
from scriptmail.store.writer import StoreUnavailable, Writer

_notes = Table("notes", MetaData(), Column("n", Integer, primary_key=True))
_ADD = insert(_notes)


def _numbers(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return connection.execute(select(_notes.c.n).order_by(_notes.c.n)).scalars().all()


def test_queued_writes_are_committed_and_read_back_in_their_transaction(writer: Writer, engine: Engine) -> None:
    def operation(connection) -> list[int]:
        pipeline.later(connection, _ADD, [{"n": 1}, {"n": 2}])
        seen = connection.execute(select(_notes.c.n).order_by(_notes.c.n)).scalars().all()
        pipeline.later(connection, _ADD, [{"n": 3}])
        return seen

    assert writer.submit_nowait(operation).result(10) == [1, 2]
    assert _numbers(engine) == [1, 2, 3]


def test_a_queued_write_that_breaks_a_constraint_fails_its_operation_alone(writer: Writer, engine: Engine) -> None:
    """The error surfaces at the COMMIT's round trip, as SQLAlchemy's IntegrityError, so the
    writer isolates it as it does any constraint violation (and does not call the store down)."""
    assert writer.submit_nowait(lambda connection: pipeline.later(connection, _ADD, [{"n": 1}])).result(10) is None
    error = writer.submit_nowait(lambda connection: pipeline.later(connection, _ADD, [{"n": 1}])).exception(10)
    assert isinstance(error, IntegrityError) and not isinstance(error, StoreUnavailable)
    assert writer.submit_nowait(lambda connection: pipeline.later(connection, _ADD, [{"n": 2}])).result(10) is None
    assert _numbers(engine) == [1, 2]


def test_writes_queued_before_a_failure_are_not_sent_with_the_next_transaction(writer: Writer, engine: Engine) -> None:
    def failing(connection) -> None:
        pipeline.later(connection, _ADD, [{"n": 7}])
        raise ValueError("the operation gave up")

    assert isinstance(writer.submit_nowait(failing).exception(10), ValueError)
    assert writer.submit_nowait(lambda connection: pipeline.later(connection, _ADD, [{"n": 8}])).result(10) is None
    assert _numbers(engine) == [8]


def test_outside_the_writer_a_write_runs_at_once(notes: Engine) -> None:
    with notes.begin() as connection:
        pipeline.later(connection, _ADD, [{"n": 5}])
        assert connection.execute(select(_notes.c.n)).scalars().all() == [5]
