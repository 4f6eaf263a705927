"""Fixtures shared by the whole suite: stores on both backends, a sink, a running gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from scriptmail.app import PARTS
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import open_engine
from scriptmail.store.migrate import upgrade
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, node_settings
from tests.support.sink import Sink
from tests.support.stores import store_url

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store, once on SQLite and once on PostgreSQL."""
    with store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink().start()
    yield running
    running.stop()


@pytest.fixture
def shop(engine: Engine) -> Engine:
    """The store with one hosting, shop.example: SMTP password PASSWORD, the test runner's uid."""
    with engine.begin() as connection:
        hosting_store.add_hosting(connection, HOSTING, "owner@shop.example", smtp_password=PASSWORD, uid=os.getuid())
    return engine


@pytest.fixture
def make_gateway(database_url: str, tmp_path: Path, sink: Sink, shop: Engine):
    """Start a gateway whose mail for sink.test goes to the sink; settings can be overridden."""
    started: list[RunningGateway] = []
    engine = shop

    def start(parts: tuple[str, ...] = PARTS, intake: dict | None = None, control: dict | None = None, **delivery: object) -> RunningGateway:
        delivery.setdefault("backoff_min", 1)
        delivery.setdefault("backoff_max", 2)
        settings = node_settings(database_url, tmp_path, routes={"sink.test": f"127.0.0.1:{sink.port}"}, **delivery)
        if intake:
            settings.intake = settings.intake.model_copy(update=intake)
        if control:
            settings.control = settings.control.model_copy(update=control)
        running = RunningGateway(settings, parts).start()
        running.engine = engine
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    return make_gateway()
