"""Webhook events are written by the transaction that causes them, for the endpoints that
subscribe to them, and cost the delivery hot path nothing when nobody subscribes."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, event, func, select

from scriptmail.control.states import Action, Actor
from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue
from scriptmail.store import webhooks as store
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, expire_held
from scriptmail.store.schema import webhook_messages

URL = "https://hooks.example.com/in"


@pytest.fixture
def sites(engine: Engine) -> Engine:
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "a.test", "owner@a.test")
        hosting_store.add_hosting(connection, "b.test", "owner@b.test")
    store.invalidate()
    return engine


def _claimed(engine: Engine, hosting: str, count: int, now: float) -> list:
    with for_writing(engine).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=hosting).id
        addresses = tuple(f"r{i}@dest.test" for i in range(count))
        queue.insert_submission(
            connection, Submission(hosting_id, "w@a.test", addresses, b"Subject: hi\r\n\r\nb\r\n", Origin.SMTP, "c", subject="hi"), now
        )
        return queue.claim_due(connection, "node", 1000, 60, now)


def _bounce(engine: Engine, due: list, now: float) -> None:
    results = [
        AttemptResult(r.id, RecipientStatus.BOUNCED, 550, "5.1.1 no such user", "mx", now, 0.1, hosting_id=r.hosting_id) for r in due
    ]
    with for_writing(engine).begin() as connection:
        queue.record_results(connection, "node", results, now)


def _events(engine: Engine) -> list[tuple[int, str, dict]]:
    with engine.connect() as connection:
        rows = connection.execute(select(webhook_messages.c.id, webhook_messages.c.endpoint_id, webhook_messages.c.event_type)
                                  .order_by(webhook_messages.c.id)).all()  # fmt: skip
        return [(row.endpoint_id, row.event_type, store.payload_of(connection, row.id)) for row in rows]


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


def test_bounces_become_events_for_the_hostings_subscribers_only(sites: Engine) -> None:
    with for_writing(sites).begin() as connection:
        mine, secret = store.create_endpoint(connection, "a.test", URL, "message.bounced", 10.0)
        store.create_endpoint(connection, "b.test", URL, "message.bounced", 10.0)
        platform, _ = store.create_endpoint(connection, None, URL, "message.bounced,hosting.state_changed", 10.0)
        store.create_endpoint(connection, "a.test", URL, "message.expired", 10.0)
    assert secret.startswith("whsec_")
    _bounce(sites, _claimed(sites, "a.test", 3, 100.0), 101.0)
    events = _events(sites)
    assert sorted(endpoint for endpoint, _, _ in events) == [mine.id] * 3 + [platform.id] * 3
    _, event_type, payload = events[0]
    assert event_type == "message.bounced" and payload["type"] == "message.bounced"
    assert payload["data"]["hosting"] == "a.test" and payload["data"]["code"] == 550
    assert payload["data"]["to"].endswith("@dest.test") and payload["data"]["subject"] == "hi"


def test_without_subscribers_the_results_hot_path_does_not_touch_webhooks(sites: Engine) -> None:
    due = _claimed(sites, "a.test", 200, 100.0)
    with for_writing(sites).begin() as connection:
        store.create_endpoint(connection, "b.test", URL, "hosting.state_changed", 10.0)  # not a bounce subscriber
    with sites.connect() as connection:
        store.subscriptions(connection)  # the cache is warm, as on a running node
    seen = _statements(sites)
    _bounce(sites, due, 101.0)
    assert not [statement for statement in seen if "webhook" in statement]
    assert _events(sites) == []


def test_with_a_subscriber_the_events_of_a_commit_cost_one_select_and_one_insert(sites: Engine) -> None:
    due = _claimed(sites, "a.test", 200, 100.0)
    with for_writing(sites).begin() as connection:
        store.create_endpoint(connection, "a.test", URL, "message.bounced", 10.0)
    with sites.connect() as connection:
        store.subscriptions(connection)
    seen = _statements(sites)
    _bounce(sites, due, 101.0)
    webhook_statements = [statement for statement in seen if "webhook" in statement]
    assert len(webhook_statements) == 1 and webhook_statements[0].lstrip().upper().startswith("INSERT")
    # The events' details (address, subject, script) come from one SELECT for the whole batch.
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT") and "messages.subject" in s]) == 1
    assert len(_events(sites)) == 200


def test_a_state_change_and_its_event_commit_or_roll_back_together(sites: Engine) -> None:
    with for_writing(sites).begin() as connection:
        endpoint, _ = store.create_endpoint(connection, "a.test", URL, "hosting.state_changed", 10.0)
    with pytest.raises(RuntimeError), for_writing(sites).begin() as connection:
        change_state(connection, "a.test", Action.BLOCK, Actor.CUSTOMER, 100.0, reason="by hand")
        raise RuntimeError("the process dies before the commit")
    assert _events(sites) == []
    with for_writing(sites).begin() as connection:
        change_state(connection, "a.test", Action.BLOCK, Actor.CUSTOMER, 100.0, reason="by hand")
    ((endpoint_id, event_type, payload),) = _events(sites)
    assert (endpoint_id, event_type) == (endpoint.id, "hosting.state_changed")
    assert payload["data"] | {"evidence": None} == {
        "hosting": "a.test", "from": "active", "to": "blocked", "actor": "customer", "action": "block",
        "reason": "by hand", "evidence": None,
    }  # fmt: skip


def test_held_mail_that_expires_is_an_event(sites: Engine) -> None:
    with for_writing(sites).begin() as connection:
        store.create_endpoint(connection, "a.test", URL, "message.expired", 10.0)
        change_state(connection, "a.test", Action.BLOCK, Actor.CUSTOMER, 50.0)
    _claimed(sites, "a.test", 2, 100.0)  # held at once: nothing is claimed
    with for_writing(sites).begin() as connection:
        assert expire_held(connection, 1000.0, 2000.0) == 2
    events = _events(sites)
    assert [event_type for _, event_type, _ in events] == ["message.expired"] * 2
    assert "held for" in events[0][2]["data"]["text"]


def test_an_endpoint_removed_elsewhere_is_skipped_even_by_a_stale_cache(sites: Engine) -> None:
    with for_writing(sites).begin() as connection:
        endpoint, _ = store.create_endpoint(connection, "a.test", URL, "message.bounced", 10.0)
    due = _claimed(sites, "a.test", 2, 100.0)
    with sites.connect() as connection:
        stale = store.subscriptions(connection)
    with for_writing(sites).begin() as connection:
        store.remove_endpoint(connection, endpoint.id)
    store._CACHE[str(sites.url)] = stale  # another process removed it: this one still believes in it
    _bounce(sites, due, 101.0)
    with sites.connect() as connection:
        assert connection.execute(select(func.count()).select_from(webhook_messages)).scalar_one() == 0


@pytest.mark.parametrize(
    ("url", "events", "message"),
    [("http://x.test/", "", "at least one"), ("http://x.test/", "message.sent", "unknown event"),
     ("ftp://x.test/", "*", "https://"), ("http://x.test/", "webhook.test", "unknown event")],
)  # fmt: skip
def test_bad_endpoints_are_refused_with_a_reason(sites: Engine, url: str, events: str, message: str) -> None:
    with pytest.raises(ValueError, match=message), for_writing(sites).begin() as connection:
        store.create_endpoint(connection, "a.test", url, events, 10.0)
    with pytest.raises(hosting_store.HostingError), for_writing(sites).begin() as connection:
        store.create_endpoint(connection, "nobody.test", URL, "*", 10.0)


def test_a_complaint_and_a_later_bounce_report_are_events(sites: Engine) -> None:
    from scriptmail.bounces.reports import Failure, Report
    from scriptmail.store.bounce_reports import apply_report

    with for_writing(sites).begin() as connection:
        store.create_endpoint(connection, "a.test", URL, "message.complained,message.bounced", 10.0)
    due = _claimed(sites, "a.test", 2, 100.0)
    with for_writing(sites).begin() as connection:
        queue.record_results(connection, "node", [
            AttemptResult(r.id, RecipientStatus.SENT, 250, "ok", "mx", 101.0, 0.1, hosting_id=r.hosting_id) for r in due
        ], 101.0)  # fmt: skip
        apply_report(connection, due[0].id, Report("arf", feedback_type="abuse"), b"report", "mx", 200.0)
        failure = Failure(recipient=due[1].address, status="5.1.1", action="failed", diagnostic="no such user", remote_mta="mx", code=550)
        apply_report(connection, due[1].id, Report("dsn", failures=(failure,)), b"report", "mx", 201.0)
    events = _events(sites)
    assert [(event_type, payload["data"]["to"]) for _, event_type, payload in events] == [
        ("message.complained", due[0].address), ("message.bounced", due[1].address),
    ]
    assert "complaint (abuse)" in events[0][2]["data"]["text"] and events[1][2]["data"]["code"] == 550


def test_the_quota_gate_holding_mail_back_is_an_event(sites: Engine) -> None:
    from zoneinfo import ZoneInfo

    from scriptmail.config import PlanSettings, Settings
    from scriptmail.control.quota import QuotaGate

    settings = Settings(plans={"tiny": PlanSettings(hourly=2)})
    with for_writing(sites).begin() as connection:
        hosting_store.update_hosting(connection, "a.test", plan="tiny")
        store.create_endpoint(connection, "a.test", URL, "hosting.quota_reached", 10.0)
    gate = QuotaGate(settings.plan, ZoneInfo("UTC"))
    with for_writing(sites).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name="a.test").id
        queue.insert_submission(connection, Submission(hosting_id, "w@a.test", ("x@d.test", "y@d.test", "z@d.test"), b"\r\n",
                                                       Origin.SMTP, "c"), 100.0)  # fmt: skip
        assert len(queue.claim_due(connection, "node", 10, 60, 101.0, gate)) == 2
        assert queue.claim_due(connection, "node", 10, 60, 102.0, gate) == []  # the gate remembers: no second event
    ((_, event_type, payload),) = _events(sites)
    assert event_type == "hosting.quota_reached" and payload["data"]["hosting"] == "a.test"
    assert payload["data"]["waiting"] == 1 and "hourly quota of 2" in payload["data"]["reason"]
