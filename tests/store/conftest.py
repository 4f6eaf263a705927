"""Fixtures of the store's own tests: a scratch table and the real writer over it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from scriptmail.store.writer import Writer


@pytest.fixture
def notes(engine: Engine) -> Engine:
    """The store with a scratch table, `notes (n INTEGER PRIMARY KEY)`."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (n INTEGER PRIMARY KEY)"))
    return engine


@pytest.fixture
def writer(notes: Engine):
    running = Writer(notes)
    running.start()
    yield running
    running.stop()
