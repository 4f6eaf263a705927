"""Queue operations on both stores: claims are leases, outcomes land once, bodies are freed at the end."""

from __future__ import annotations

import time

from sqlalchemy import Engine, event, select

from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import attempts, bodies, messages, recipients


def _submit(engine: Engine, *addresses: str, now: float = 1000.0) -> int:
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.find_hosting(connection, name="site.test") or hosting_store.add_hosting(
            connection, "site.test", "owner@site.test"
        )
        return queue.insert_submission(
            connection,
            Submission(hosting.id, "web@site.test", addresses, b"Subject: s\r\n\r\nb\r\n", Origin.SMTP, "127.0.0.1"),
            now,
        )


def _claim(engine: Engine, owner: str, now: float, limit: int = 100, lease: float = 60):
    with for_writing(engine).begin() as connection:
        return queue.claim_due(connection, owner, limit, lease, now)


def _record(engine: Engine, owner: str, results: list[AttemptResult], now: float) -> int:
    with for_writing(engine).begin() as connection:
        return queue.record_results(connection, owner, results, now)


def _result(recipient_id: int, status: RecipientStatus, code: int = 250, next_at: float | None = None) -> AttemptResult:
    return AttemptResult(recipient_id, status, code, "text", "mx.test[127.0.0.1]:25", 1001.0, 0.5, next_attempt_at=next_at)


def _statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(recipients.c.address, recipients.c.status)).all())


def test_a_claimed_recipient_is_not_claimed_again_until_its_lease_expires(engine: Engine) -> None:
    _submit(engine, "a@x.test", "b@x.test")
    first = _claim(engine, "node-a", now=1000.0, lease=60)
    assert sorted(r.address for r in first) == ["a@x.test", "b@x.test"]
    assert first[0].envelope_from == "web@site.test"
    assert _claim(engine, "node-b", now=1030.0) == []
    taken_over = _claim(engine, "node-b", now=1061.0)
    assert sorted(r.address for r in taken_over) == ["a@x.test", "b@x.test"]


def test_a_renewed_lease_keeps_the_recipient(engine: Engine) -> None:
    _submit(engine, "a@x.test")
    _claim(engine, "node-a", now=1000.0, lease=60)
    with for_writing(engine).begin() as connection:
        assert queue.renew_leases(connection, "node-a", 60, 1050.0) == 1
    assert _claim(engine, "node-b", now=1090.0) == []
    assert len(_claim(engine, "node-b", now=1111.0)) == 1


def test_future_recipients_wait_and_the_limit_is_honoured(engine: Engine) -> None:
    _submit(engine, *(f"r{i}@x.test" for i in range(5)), now=2000.0)
    assert _claim(engine, "n", now=1999.0) == []
    assert len(_claim(engine, "n", now=2000.0, limit=3)) == 3
    assert len(_claim(engine, "n", now=2000.0, limit=3)) == 2


def test_outcomes_are_recorded_and_the_body_is_freed_only_when_every_recipient_is_final(engine: Engine) -> None:
    message_id = _submit(engine, "sent@x.test", "later@x.test")
    claimed = {r.address: r for r in _claim(engine, "n", now=1000.0)}
    recorded = _record(
        engine,
        "n",
        [_result(claimed["sent@x.test"].id, RecipientStatus.SENT),
         _result(claimed["later@x.test"].id, RecipientStatus.DEFERRED, 451, next_at=1300.0)],
        now=1001.0,
    )
    assert recorded == 2
    assert _statuses(engine) == {"sent@x.test": "sent", "later@x.test": "deferred"}
    with engine.connect() as connection:
        assert connection.execute(select(bodies.c.message_id)).scalars().all() == [message_id]
    assert _claim(engine, "n", now=1200.0) == []
    (retry,) = _claim(engine, "n", now=1300.0)
    assert retry.attempts == 1
    _record(engine, "n", [_result(retry.id, RecipientStatus.BOUNCED, 550)], now=1301.0)
    with engine.connect() as connection:
        assert connection.execute(select(bodies)).all() == []
        assert len(connection.execute(select(attempts)).all()) == 3


def test_an_outcome_for_a_lease_taken_over_is_logged_but_does_not_overwrite(engine: Engine) -> None:
    _submit(engine, "a@x.test")
    (mine,) = _claim(engine, "slow-node", now=1000.0, lease=60)
    (theirs,) = _claim(engine, "fast-node", now=1061.0, lease=60)
    _record(engine, "fast-node", [_result(theirs.id, RecipientStatus.SENT)], now=1062.0)
    assert _record(engine, "slow-node", [_result(mine.id, RecipientStatus.BOUNCED, 550)], now=1063.0) == 0
    assert _statuses(engine) == {"a@x.test": "sent"}
    with engine.connect() as connection:
        assert sorted(connection.execute(select(attempts.c.node)).scalars()) == ["fast-node", "slow-node"]


def test_a_restarting_node_releases_only_its_own_leases(engine: Engine) -> None:
    _submit(engine, "a@x.test")
    _submit(engine, "b@x.test")
    _claim(engine, "node-a", now=1000.0, limit=1)
    _claim(engine, "node-b", now=1000.0, limit=1)
    with for_writing(engine).begin() as connection:
        assert queue.release_leases(connection, "node-a", 1001.0) == 1
    again = _claim(engine, "node-c", now=1001.0)
    assert [r.address for r in again] == ["a@x.test"]


def test_bulk_insert_returns_ids_in_submission_order(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.add_hosting(connection, "bulk.test", "o@bulk.test")
        items = [
            (Submission(hosting.id, "w@bulk.test", (f"r{i}@x.test",), f"Subject: {i}\r\n\r\n".encode(), Origin.SMTP, "c", subject=str(i)), time.time())
            for i in range(50)
        ]
        inserts: list[str] = []

        def count(_conn, _cursor, statement: str, *_args) -> None:
            if statement.startswith("INSERT INTO messages"):
                inserts.append(statement)

        event.listen(connection, "before_cursor_execute", count)
        ids = queue.insert_submissions(connection, items)
        event.remove(connection, "before_cursor_execute", count)
        by_id = dict(connection.execute(select(recipients.c.message_id, recipients.c.address)).all())
        subjects = dict(connection.execute(select(messages.c.id, messages.c.subject)).all())
    assert ids == sorted(ids)
    assert [by_id[i] for i in ids] == [f"r{i}@x.test" for i in range(50)]
    assert [subjects[i] for i in ids] == [str(i) for i in range(50)]  # each id is its own message's row
    assert len(inserts) == 1  # one statement for the batch, on both stores
