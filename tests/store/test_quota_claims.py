"""The hourly quota at the claim, on both stores: over-quota mail waits in the queue, says why,
and goes out when the window has room; other hostings are never starved by it."""

from __future__ import annotations

import threading
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from scriptmail.config import PlanSettings, Settings
from scriptmail.control.quota import QuotaGate
from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import activity, leases, queue
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import recipients

NOW = 1_800_000_000.0
SETTINGS = Settings(plans={"tiny": PlanSettings(hourly=100)})


def _hosting(engine: Engine, name: str, plan: str) -> int:
    with for_writing(engine).begin() as connection:
        return hosting_store.add_hosting(connection, name, f"owner@{name}", plan=plan).id


def _submit(engine: Engine, hosting_id: int, count: int, now: float = NOW, score: float = 0.0) -> None:
    data = b"Subject: s\r\n\r\nb\r\n"
    with for_writing(engine).begin() as connection:
        queue.insert_submissions(
            connection,
            [
                (Submission(hosting_id, "web@site.test", (f"r{n}@x.test",), data, Origin.SMTP, "127.0.0.1", score=score), now)
                for n in range(count)
            ],
        )


def _gate() -> QuotaGate:
    return QuotaGate(SETTINGS.plan, ZoneInfo("UTC"))


def _claim(engine: Engine, gate: QuotaGate, now: float, owner: str = "node", limit: int = 500):
    with for_writing(engine).begin() as connection:
        return queue.claim_due(connection, owner, limit, 600, now, gate)


def test_150_on_a_100_per_hour_plan_send_100_and_the_rest_wait_for_room(engine: Engine) -> None:
    site = _hosting(engine, "site.test", "tiny")
    _submit(engine, site, 150)
    gate = _gate()
    first = _claim(engine, gate, NOW + 1)
    assert len(first) == 100
    _sent(engine, first, NOW + 2)
    assert gate.exhausted[site] == (int((NOW + 1) // 60) + 61) * 60
    with engine.connect() as connection:
        waiting = connection.execute(select(recipients.c.status, recipients.c.last_text, recipients.c.next_attempt_at).where(
            recipients.c.status == "queued")).all()  # fmt: skip
    assert len(waiting) == 50
    assert {row.last_text for row in waiting} == {
        f"waiting: hourly quota of 100 reached; sending resumes at {_utc(gate.exhausted[site])}"
    }
    # Within the hour nothing more goes, even to a node that never saw the exhaustion.
    assert _claim(engine, gate, NOW + 1800) == []
    assert _claim(engine, _gate(), NOW + 3600) == []
    later = _claim(engine, _gate(), NOW + 3660)
    assert len(later) == 50


def test_a_hosting_over_its_quota_does_not_starve_the_others(engine: Engine) -> None:
    flood = _hosting(engine, "flood.test", "tiny")
    calm = _hosting(engine, "calm.test", "default")
    _submit(engine, flood, 2000)
    _submit(engine, calm, 10, now=NOW + 5)
    gate = _gate()
    claimed = _claim(engine, gate, NOW + 10, limit=200)
    assert [r.hosting_id for r in claimed].count(flood) == 100
    _sent(engine, claimed, NOW + 10)
    second = [r.hosting_id for r in _claim(engine, gate, NOW + 11, limit=200)]
    assert second == [calm] * 10  # the flood's 1,900 are not even looked at


def test_retries_do_not_count_against_the_quota(engine: Engine) -> None:
    site = _hosting(engine, "site.test", "tiny")
    _submit(engine, site, 100)
    gate = _gate()
    claimed = _claim(engine, gate, NOW + 1)
    with for_writing(engine).begin() as connection:
        queue.record_results(
            connection, "node",
            [AttemptResult(r.id, RecipientStatus.DEFERRED, 451, "try later", "mx", NOW, 0.1, NOW + 300, site) for r in claimed],
            NOW + 2,
        )  # fmt: skip
    retried = _claim(engine, _gate(), NOW + 301)
    assert len(retried) == 100


def test_two_claimers_on_one_store_never_exceed_the_quota_together(engine: Engine) -> None:
    site = _hosting(engine, "site.test", "tiny")
    _submit(engine, site, 400)
    results: list[int] = []

    def claimer(name: str) -> None:
        gate = _gate()
        for _ in range(10):
            results.append(len(_claim(engine, gate, NOW + 1, owner=name, limit=30)))

    threads = [threading.Thread(target=claimer, args=(f"node-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 100
    with engine.connect() as connection:
        assert activity.totals_since(connection, site, 0)["dispatched"] == 100


def test_the_counters_follow_intake_claims_and_outcomes(engine: Engine) -> None:
    site = _hosting(engine, "site.test", "default")
    _submit(engine, site, 3)
    _submit(engine, site, 2, score=3.0)  # the acceptor scored these as spam
    claimed = _claim(engine, _gate(), NOW + 1)
    outcomes = [
        (RecipientStatus.SENT, 250, "ok"),
        (RecipientStatus.SENT, 250, "ok"),
        (RecipientStatus.BOUNCED, 550, "5.1.1 user unknown"),
        (RecipientStatus.BOUNCED, 554, "5.7.1 refused"),
        (RecipientStatus.DEFERRED, 451, "later"),
    ]
    with for_writing(engine).begin() as connection:
        queue.record_results(
            connection, "node",
            [AttemptResult(r.id, s, c, t, "mx", NOW, 0.1, NOW + 300, site) for r, (s, c, t) in zip(claimed, outcomes)],
            NOW + 2,
        )  # fmt: skip
    with engine.connect() as connection:
        totals = activity.totals_since(connection, site, 0)
    assert totals == {
        "accepted": 5, "flagged": 2, "dispatched": 5, "sent": 2, "bounced": 2, "unknown_user": 1, "expired": 0, "complaints": 0,
        "held": 0,
        "suppressed": 0,
    }  # fmt: skip


def test_a_lease_has_one_holder_until_it_runs_out(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        assert leases.acquire(connection, "policy", "a", 30, NOW)
        assert not leases.acquire(connection, "policy", "b", 30, NOW + 10)
        assert leases.acquire(connection, "policy", "a", 30, NOW + 20)  # the holder extends it
        assert leases.holder(connection, "policy", NOW + 49) == "a"
        assert leases.acquire(connection, "policy", "b", 30, NOW + 51)  # ran out: taken over
        leases.release(connection, "policy", "a")  # not a's any more: nothing happens
        assert leases.holder(connection, "policy", NOW + 52) == "b"


def _sent(engine: Engine, claimed, now: float) -> None:
    with for_writing(engine).begin() as connection:
        queue.record_results(
            connection,
            "node",
            [AttemptResult(r.id, RecipientStatus.SENT, 250, "ok", "mx", now, 0.1, None, r.hosting_id) for r in claimed],
            now,
        )


def _utc(at: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
