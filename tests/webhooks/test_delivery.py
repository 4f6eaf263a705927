"""Webhook delivery against real receivers on loopback, each request checked by the reference
implementation of Standard Webhooks: retries, restarts, several nodes, hostile endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select
from standardwebhooks.webhooks import Webhook

from scriptmail.config import Settings, WebhooksSettings
from scriptmail.control.states import Action, Actor
from scriptmail.store import hostings as hosting_store
from scriptmail.store import webhooks as store
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from scriptmail.store.schema import messages, webhook_messages
from scriptmail.store.writer import Writer
from scriptmail.webhooks.addresses import UrlRefused, parse_url
from scriptmail.webhooks.dispatcher import Dispatcher
from scriptmail.webhooks.resolve import Resolver
from tests.support.dns_server import DnsServer
from tests.support.webhook_receiver import GarbageServer, WebhookReceiver

LOOPBACK = ["127.0.0.0/8"]


def _settings(engine: Engine, node: str = "node-a", **webhooks: object) -> Settings:
    values: dict = {"retry_delays": [1], "retry_window": 600, "timeout": 2.0, "lease_seconds": 10, "allow_networks": LOOPBACK}
    values.update(webhooks)
    return Settings(database_url=str(engine.url.render_as_string(hide_password=False)), hostname="gw.test", node=node,
                    webhooks=WebhooksSettings(**values))  # fmt: skip


@pytest.fixture
def site(engine: Engine) -> Engine:
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "a.test", "owner@a.test")
    store.invalidate()
    return engine


@pytest.fixture
def writer(site: Engine) -> Iterator[Writer]:
    running = Writer(site)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


def _endpoint(engine: Engine, url: str, events: str = "hosting.state_changed") -> tuple[int, str]:
    with for_writing(engine).begin() as connection:
        endpoint, secret = store.create_endpoint(connection, "a.test", url, events, time.time())
    return endpoint.id, secret


def _block_and_unblock(engine: Engine, times: int = 1) -> None:
    for _ in range(times):
        for action in (Action.BLOCK, Action.UNBLOCK):
            with for_writing(engine).begin() as connection:
                change_state(connection, "a.test", action, Actor.CUSTOMER, time.time(), reason="test")


def _statuses(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(webhook_messages.c.status).order_by(webhook_messages.c.id)).scalars())


def _run_until(dispatchers: list[Dispatcher], done: Callable[[], bool], seconds: float = 20.0) -> None:
    async def rounds() -> None:
        deadline = time.monotonic() + seconds
        while True:  # at least one round
            await asyncio.gather(*(dispatcher.round() for dispatcher in dispatchers))
            if done():
                break
            assert time.monotonic() < deadline, "webhooks not delivered in time"
            await asyncio.sleep(0.1)
        for dispatcher in dispatchers:
            await dispatcher.close()

    asyncio.run(rounds())


def test_a_receiver_answering_500_gets_retries_then_each_event_once_verified(site: Engine, writer: Writer, receiver: WebhookReceiver) -> None:
    endpoint_id, receiver.secret = _endpoint(site, receiver.url)
    receiver.answers = [500, 500, 503]
    _block_and_unblock(site)
    _run_until([Dispatcher(writer, _settings(site))], lambda: _statuses(site) == ["delivered", "delivered"])
    assert all(request.verified for request in receiver.received)
    ids = [request.id for request in receiver.received]
    assert len(ids) == 5 and len(set(ids)) == 2  # three failures retried, each event delivered once
    assert [request.body["data"]["to"] for request in receiver.received if request.body["type"] == "hosting.state_changed"][-2:]
    with site.connect() as connection:
        log = store.delivery_log(connection, endpoint_id)
    assert [entry["status_code"] for entry in reversed(log)].count(500) == 2
    assert any(entry["excerpt"] == "answer 503" for entry in log) and all(entry["duration"] >= 0 for entry in log)
    time.sleep(1.2)
    _run_until([Dispatcher(writer, _settings(site))], lambda: True)
    assert len(receiver.received) == 5  # delivered messages are never sent again


def test_a_restart_during_retries_loses_nothing(site: Engine, receiver: WebhookReceiver) -> None:
    _, receiver.secret = _endpoint(site, receiver.url)
    receiver.answers = [500, 500]
    _block_and_unblock(site)
    first = Writer(site)
    first.start()
    _run_until([Dispatcher(first, _settings(site))], lambda: len(receiver.received) >= 2)
    # The node dies with a message leased to it: claimed, never answered.
    with for_writing(site).begin() as connection:
        store.claim_due(connection, "node-a:webhooks", 10, 600, time.time() + 5)
    first.stop()
    again = Writer(site)
    again.start()
    try:
        _run_until([Dispatcher(again, _settings(site))], lambda: _statuses(site) == ["delivered", "delivered"])
    finally:
        again.stop()
    assert {request.id for request in receiver.received} == {"msg_1", "msg_2"}
    assert all(request.verified for request in receiver.received)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_nodes_send_each_event_once(site: Engine, receiver: WebhookReceiver) -> None:
    _, receiver.secret = _endpoint(site, receiver.url)
    _block_and_unblock(site, times=20)
    writers = [Writer(site), Writer(site)]
    for running in writers:
        running.start()
    try:
        nodes = [Dispatcher(writers[0], _settings(site, "node-a", batch_size=3)), Dispatcher(writers[1], _settings(site, "node-b", batch_size=3))]
        _run_until(nodes, lambda: set(_statuses(site)) == {"delivered"})
    finally:
        for running in writers:
            running.stop()
    ids = [request.id for request in receiver.received]
    assert len(ids) == 40 and len(set(ids)) == 40


def test_a_literal_loopback_address_is_refused_without_the_operators_allow_list(site: Engine, writer: Writer, receiver: WebhookReceiver) -> None:
    endpoint_id, receiver.secret = _endpoint(site, receiver.url)
    _block_and_unblock(site)
    dispatcher = Dispatcher(writer, _settings(site, allow_networks=[]))
    _run_until([dispatcher], lambda: True)
    assert receiver.received == []
    with site.connect() as connection:
        (entry, *_) = store.delivery_log(connection, endpoint_id)
    assert entry["status_code"] is None and "127.0.0.1 is loopback" in entry["error"]


def test_a_name_resolving_to_a_private_address_is_refused(site: Engine, writer: Writer, receiver: WebhookReceiver) -> None:
    dns = DnsServer({
        ("hooks.customer.test.", "A"): ["127.0.0.1"],
        ("mixed.customer.test.", "A"): ["93.184.216.34", "10.0.0.7"],
        ("private.customer.test.", "A"): ["192.168.1.20"],
    }).start()  # fmt: skip
    try:
        endpoint_id, receiver.secret = _endpoint(site, f"http://hooks.customer.test:{receiver.port}/hooks")
        _block_and_unblock(site)
        nameservers = {"nameservers": ["127.0.0.1"], "dns_port": dns.port}
        _run_until([Dispatcher(writer, _settings(site, allow_networks=[], **nameservers))], lambda: True)
        assert receiver.received == []
        with site.connect() as connection:
            assert "hooks.customer.test may not be reached: 127.0.0.1 is loopback" in store.delivery_log(connection, endpoint_id)[0]["error"]
        # The same name with the operator's allow-list: resolved by the configured server, reached.
        _run_until(
            [Dispatcher(writer, _settings(site, **nameservers))], lambda: _statuses(site) == ["delivered", "delivered"], seconds=10
        )
        assert receiver.received[0].headers["host"] == f"hooks.customer.test:{receiver.port}" and receiver.received[0].verified
        resolver = Resolver(["127.0.0.1"], dns.port)
        for name, why in (("mixed.customer.test", "10.0.0.7 is private"), ("private.customer.test", "192.168.1.20 is private"),
                          ("nothing.customer.test", "has no address")):  # fmt: skip
            with pytest.raises(UrlRefused, match=why):
                asyncio.run(resolver.address(parse_url(f"https://{name}/")))
    finally:
        dns.stop()


def test_a_redirect_to_a_private_address_is_not_followed(site: Engine, writer: Writer, receiver: WebhookReceiver) -> None:
    inside = WebhookReceiver(host="127.0.0.2").start()
    try:
        endpoint_id, receiver.secret = _endpoint(site, receiver.url)
        receiver.answers = [f"redirect:{inside.url}"]
        _block_and_unblock(site)
        _run_until([Dispatcher(writer, _settings(site, allow_networks=["127.0.0.1/32"]))], lambda: len(receiver.received) >= 2)
        assert inside.received == []
        with site.connect() as connection:
            log = store.delivery_log(connection, endpoint_id)
        assert any(entry["status_code"] == 307 and f"redirect to {inside.url} not followed" in entry["error"] for entry in log)
    finally:
        inside.stop()


def test_hostile_answers_huge_slow_or_not_http_are_failures_that_cost_little(site: Engine, writer: Writer, receiver: WebhookReceiver) -> None:
    garbage = GarbageServer()
    try:
        huge_id, receiver.secret = _endpoint(site, receiver.url)
        garbage_id, _ = _endpoint(site, f"http://127.0.0.1:{garbage.port}/x")
        receiver.answers = ["huge", "slow"]
        receiver.slow_seconds = 5
        _block_and_unblock(site)
        started = time.monotonic()
        _run_until([Dispatcher(writer, _settings(site))], lambda: len(receiver.received) >= 2 and garbage.connections >= 2)
        assert time.monotonic() - started < 15
        with site.connect() as connection:
            huge_log = store.delivery_log(connection, huge_id)
            garbage_log = store.delivery_log(connection, garbage_id)
        huge = [entry for entry in huge_log if entry["status_code"] == 200]
        assert huge and len(huge[0]["excerpt"]) == 500  # read up to a cap, kept as an excerpt
        assert any("no complete answer within 2 s" in entry["error"] for entry in huge_log)
        assert garbage_log and all(entry["status_code"] is None and entry["error"] for entry in garbage_log)
    finally:
        garbage.stop()


def test_an_endpoint_that_keeps_failing_is_disabled_and_its_owner_told(site: Engine, writer: Writer, receiver: WebhookReceiver) -> None:
    endpoint_id, receiver.secret = _endpoint(site, receiver.url)
    receiver.answers = [500] * 100
    offset = [0.0]
    settings = _settings(site, disable_after=60)
    _block_and_unblock(site)
    dispatcher = Dispatcher(writer, settings, clock=lambda: time.time() + offset[0])
    _run_until([dispatcher], lambda: len(receiver.received) >= 2)
    offset[0] = 62.0  # a minute of failures later (timestamps stay within the receivers' 5 minutes)
    dispatcher = Dispatcher(writer, settings, clock=lambda: time.time() + offset[0])
    with site.connect() as connection:
        assert store.get_endpoint(connection, endpoint_id).disabled_at is None
    _run_until([dispatcher], lambda: _disabled(site, endpoint_id))
    with site.connect() as connection:
        notices = connection.execute(select(messages.c.subject).where(messages.c.script == "scriptmail webhook notice")).scalars().all()
    assert notices == [f"[a.test] Webhook endpoint disabled: {receiver.url}"]
    count = len(receiver.received)
    _block_and_unblock(site)
    _run_until([Dispatcher(writer, settings)], lambda: True)
    assert len(receiver.received) == count  # nothing more is sent to it...
    receiver.answers = []
    with for_writing(site).begin() as connection:
        test_id = store.queue_test(connection, endpoint_id, time.time())
    _run_until([Dispatcher(writer, settings)], lambda: any(r.id == f"msg_{test_id}" for r in receiver.received))  # ...but a test
    assert receiver.received[-1].body["type"] == "webhook.test" and receiver.received[-1].verified


def _disabled(engine: Engine, endpoint_id: int) -> bool:
    with engine.connect() as connection:
        return store.get_endpoint(connection, endpoint_id).disabled_at is not None


def test_after_a_rotation_the_old_and_the_new_secret_both_verify(site: Engine, writer: Writer, receiver: WebhookReceiver) -> None:
    endpoint_id, old = _endpoint(site, receiver.url)
    with for_writing(site).begin() as connection:
        receiver.secret = store.rotate_secret(connection, endpoint_id, time.time(), grace=3600)
    _block_and_unblock(site)
    _run_until([Dispatcher(writer, _settings(site))], lambda: len(receiver.received) == 2)
    assert all(request.verified for request in receiver.received)
    request = receiver.received[0]
    Webhook(old).verify(json.dumps(request.body, separators=(",", ":"), ensure_ascii=False), request.headers)
