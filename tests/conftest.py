"""Fixtures shared by the whole suite: stores on both backends, a sink, a running gateway."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from scriptmail.app import PARTS
from scriptmail.config import PlanSettings
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import open_engine
from scriptmail.store.migrate import upgrade
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, node_settings
from tests.support.rspamd import Rspamd, rspamd_binary
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
    """The store with one hosting, shop.example: SMTP password PASSWORD, the test runner's uid.

    Its plan is `unlimited` (no quota, no automatic blocks) so that tests of other things are not
    throttled or blocked by the policy; the policy's own tests choose a plan.
    """
    with engine.begin() as connection:
        hosting_store.add_hosting(
            connection, HOSTING, "owner@sink.test", smtp_password=PASSWORD, uid=os.getuid(), plan="unlimited"
        )
    return engine


@pytest.fixture
def make_gateway(database_url: str, tmp_path: Path, sink: Sink, shop: Engine):
    """Start a gateway whose mail for sink.test goes to the sink; settings can be overridden."""
    started: list[RunningGateway] = []
    engine = shop

    def start(
        parts: tuple[str, ...] = PARTS,
        intake: dict | None = None,
        control: dict | None = None,
        plans: dict[str, PlanSettings] | None = None,
        bounces: dict | None = None,
        web: dict | None = None,
        webhooks: dict | None = None,
        domains: dict | None = None,
        clock: Callable[[], float] = time.time,
        **delivery: object,
    ) -> RunningGateway:
        delivery.setdefault("backoff_min", 1)
        delivery.setdefault("backoff_max", 2)
        settings = node_settings(database_url, tmp_path, routes={"sink.test": f"127.0.0.1:{sink.port}"}, **delivery)
        if intake:
            settings.intake = settings.intake.model_copy(update=intake)
        if control:
            settings.control = settings.control.model_copy(update=control)
        if plans:
            settings.plans = {**settings.plans, **plans}
        if bounces:
            settings.bounces = settings.bounces.model_copy(update=bounces)
        if web:
            settings.web = settings.web.model_copy(update=web)
        if webhooks:
            settings.webhooks = settings.webhooks.model_copy(update=webhooks)
        if domains:
            settings.domains = settings.domains.model_copy(update=domains)
        running = RunningGateway(settings, parts, clock).start()
        running.engine = engine
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    return make_gateway()


@pytest.fixture(scope="session")
def rspamd(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rspamd]:
    """One real rspamd for the session (skips when it is not installed); its hyperscan cache is
    kept in pytest's cache between runs, since compiling it takes most of rspamd's start."""
    binary = rspamd_binary()
    pytest_cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = pytest_cache.mkdir("rspamd-hyperscan") if pytest_cache is not None else None
    running = Rspamd(tmp_path_factory.mktemp("rspamd"), binary, hyperscan_cache=cache)
    running.start()
    yield running
    running.stop()
