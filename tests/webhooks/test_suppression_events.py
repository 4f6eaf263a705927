"""`suppression.added`: written by the transaction that puts an address on a list (a bounce, the
customer, the operator), for the hosting's subscribers and the platform's, and delivered signed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from scriptmail.config import Settings, WebhooksSettings
from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue, suppressions
from scriptmail.store import webhooks as store
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import webhook_messages
from scriptmail.store.writer import Writer
from scriptmail.webhooks.dispatcher import Dispatcher
from tests.support.webhook_receiver import WebhookReceiver

URL = "https://hooks.example.com/in"


@pytest.fixture
def sites(engine: Engine) -> Engine:
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "a.test", "owner@a.test")
        hosting_store.add_hosting(connection, "b.test", "owner@b.test")
    store.invalidate()
    return engine


def _hosting_id(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        return hosting_store.find_hosting(connection, name=name).id


def _events(engine: Engine) -> list[tuple[int, dict]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(webhook_messages.c.id, webhook_messages.c.endpoint_id)
            .where(webhook_messages.c.event_type == "suppression.added")
            .order_by(webhook_messages.c.id)
        ).all()
        return [(row.endpoint_id, store.payload_of(connection, row.id)) for row in rows]


def _endpoints(engine: Engine) -> tuple[int, int, int]:
    with for_writing(engine).begin() as connection:
        mine, _ = store.create_endpoint(connection, "a.test", URL, "suppression.added", 10.0)
        store.create_endpoint(connection, "b.test", URL, "suppression.added", 10.0)
        platform, _ = store.create_endpoint(connection, None, URL, "suppression.added", 10.0)
        other, _ = store.create_endpoint(connection, "a.test", URL, "message.bounced", 10.0)
    return mine.id, platform.id, other.id


def test_a_bounce_that_suppresses_an_address_tells_the_hostings_and_the_platforms_subscribers(sites: Engine) -> None:
    mine, platform, _ = _endpoints(sites)
    hosting_id = _hosting_id(sites, "a.test")
    with for_writing(sites).begin() as connection:
        queue.insert_submission(
            connection, Submission(hosting_id, "w@a.test", ("gone@dest.test", "ok@dest.test"), b"Subject: hi\r\n\r\nb\r\n", Origin.SMTP, "c"), 100.0
        )  # fmt: skip
        due = queue.claim_due(connection, "node", 10, 60, 100.0)
    gone = next(r for r in due if r.address == "gone@dest.test")
    ok = next(r for r in due if r.address == "ok@dest.test")
    results = [
        AttemptResult(gone.id, RecipientStatus.BOUNCED, 550, "5.1.1 no such user", "mx", 101.0, 0.1, hosting_id=hosting_id),
        AttemptResult(ok.id, RecipientStatus.SENT, 250, "ok", "mx", 101.0, 0.1, hosting_id=hosting_id),
    ]
    with for_writing(sites).begin() as connection:
        queue.record_results(connection, "node", results, 101.0, suppression_days=30)
    events = _events(sites)
    assert sorted(endpoint for endpoint, _ in events) == sorted([mine, platform])
    data = events[0][1]["data"]
    assert events[0][1]["type"] == "suppression.added"
    assert data["hosting"] == "a.test" and data["list"] == "hosting" and data["value"] == "gone@dest.test"
    assert data["reason"] == "no-such-user" and data["code"] == 550 and "no such user" in data["reply"]
    assert data["expires_at"] == "1970-01-31T00:01:41Z"


def test_manual_entries_say_whether_they_are_new_and_platform_entries_reach_only_platform_endpoints(sites: Engine) -> None:
    mine, platform, _ = _endpoints(sites)
    hosting_id = _hosting_id(sites, "a.test")
    with for_writing(sites).begin() as connection:
        suppressions.add(connection, hosting_id, "Someone@Example.com", 200.0, None, reason="manual")
        suppressions.add(connection, hosting_id, "someone@example.com", 201.0, None)  # refreshed
        suppressions.add_many(connection, suppressions.PLATFORM, [("*@trap.example", "trap"), ("spam.example", "")], 202.0, None)
    events = _events(sites)
    first, again, *platform_events = events
    assert first[0] in (mine, platform) and first[1]["data"]["created"] is True
    assert [e[1]["data"]["created"] for e in events if e[1]["data"]["value"] == "someone@example.com"] == [
        True,
        True,
        False,
        False,
    ]
    platform_only = [e for e in events if e[1]["data"]["list"] == "platform"]
    assert {endpoint for endpoint, _ in platform_only} == {platform}
    assert sorted(e[1]["data"]["value"] for e in platform_only) == ["*@trap.example", "spam.example"]
    assert {e[1]["data"]["kind"] for e in platform_only} == {"pattern", "domain"}
    assert all(e[1]["data"]["hosting"] is None and e[1]["data"]["expires_at"] is None for e in platform_only)


def test_a_bad_entry_writes_no_event_and_nobody_subscribed_costs_no_query(sites: Engine) -> None:
    from sqlalchemy import event

    hosting_id = _hosting_id(sites, "a.test")
    with for_writing(sites).begin() as connection:
        store.create_endpoint(connection, "b.test", URL, "message.bounced", 10.0)  # not a suppression subscriber
        store.subscriptions(connection)  # the process's cache, fresh for a few seconds
    seen: list[str] = []
    listener = lambda conn, cursor, statement, *rest: seen.append(statement)  # noqa: E731
    event.listen(sites, "before_cursor_execute", listener)
    try:
        with for_writing(sites).begin() as connection:
            suppressions.add(connection, hosting_id, "x@example.com", 300.0, 30)
    finally:
        event.remove(sites, "before_cursor_execute", listener)
    assert not any("webhook" in statement or "FROM hostings" in statement for statement in seen)
    _endpoints(sites)
    with for_writing(sites).begin() as connection, pytest.raises(suppressions.EntryError):
        suppressions.add(connection, hosting_id, "not an address\r\n", 301.0, 30)
    assert _events(sites) == []


def test_the_event_reaches_a_receiver_signed(sites: Engine) -> None:
    receiver = WebhookReceiver().start()
    try:
        with for_writing(sites).begin() as connection:
            endpoint, secret = store.create_endpoint(connection, "a.test", receiver.url, "suppression.added", time.time())
        receiver.secret = secret
        with for_writing(sites).begin() as connection:
            suppressions.add(connection, _hosting_id(sites, "a.test"), "who@example.org", time.time(), 30)
        settings = Settings(
            database_url=str(sites.url.render_as_string(hide_password=False)), hostname="gw.test", node="n",
            webhooks=WebhooksSettings(retry_delays=[1], retry_window=600, timeout=2.0, allow_networks=["127.0.0.0/8"]),
        )  # fmt: skip
        writer = Writer(sites)
        writer.start()
        try:
            dispatcher = Dispatcher(writer, settings)

            async def run() -> None:
                await dispatcher.round()
                await dispatcher.close()

            asyncio.run(run())
        finally:
            writer.stop()
        assert len(receiver.received) == 1
        got = receiver.received[0]
        assert got.verified and got.body["type"] == "suppression.added" and got.body["data"]["value"] == "who@example.org"
    finally:
        receiver.stop()


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    store.invalidate()
    yield
    store.invalidate()
