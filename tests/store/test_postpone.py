"""Recipients that traffic shaping puts back: due later, no attempt counted, not counted twice
against the hosting's quota."""

from __future__ import annotations

from sqlalchemy import Engine, select

from scriptmail.control.states import Action, Actor
from scriptmail.store import activity, queue
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from scriptmail.store.schema import recipients
from tests.store.test_queue import _claim, _submit


def _dispatched(engine: Engine) -> int:
    with engine.connect() as connection:
        hosting_id = connection.execute(select(recipients.c.hosting_id)).scalars().first()
        return activity.totals_since(connection, hosting_id, 0)["dispatched"]


def test_a_postponed_recipient_waits_without_an_attempt_and_is_counted_once(engine: Engine) -> None:
    _submit(engine, "a@x.test", "b@x.test")
    claimed = _claim(engine, "node-a", now=1000.0, lease=600)
    assert len(claimed) == 2 and _dispatched(engine) == 2
    with for_writing(engine).begin() as connection:
        # Another node's lease, or an id that is not leased, is left alone.
        assert queue.postpone(connection, "node-b", [r.id for r in claimed], 1100.0, 1001.0) == 0
        assert queue.postpone(connection, "node-a", [claimed[0].id, 999_999], 1100.0, 1001.0) == 1
    with engine.connect() as connection:
        row = connection.execute(
            select(recipients.c.status, recipients.c.attempts, recipients.c.next_attempt_at, recipients.c.lease_owner).where(
                recipients.c.id == claimed[0].id
            )
        ).one()
    assert (row.status, row.attempts, row.next_attempt_at, row.lease_owner) == ("queued", 0, 1100.0, None)
    assert _dispatched(engine) == 1
    assert _claim(engine, "node-a", now=1050.0) == []  # b is still leased, a not yet due
    (again,) = _claim(engine, "node-a", now=1100.0)
    assert again.address == "a@x.test" and again.attempts == 0
    assert _dispatched(engine) == 2


def test_mail_held_after_its_claim_and_released_is_dispatched_once(engine: Engine) -> None:
    _submit(engine, "a@x.test", "b@x.test")
    claimed = _claim(engine, "node-a", now=1000.0, lease=600)
    assert _dispatched(engine) == 2
    with for_writing(engine).begin() as connection:
        change_state(connection, "site.test", Action.BLOCK, Actor.CUSTOMER, 1000.5)
        # The agent saw the block before sending: both are held, and were not dispatched after all.
        assert queue.withhold(connection, "node-a", [r.id for r in claimed], 1001.0) == 2
    assert _dispatched(engine) == 0
    with for_writing(engine).begin() as connection:
        change_state(connection, "site.test", Action.UNBLOCK, Actor.CUSTOMER, 1002.0)
    again = _claim(engine, "node-a", now=1003.0, lease=600)
    assert {r.address for r in again} == {"a@x.test", "b@x.test"}
    assert _dispatched(engine) == 2  # once each, at the claim that sends them
    with for_writing(engine).begin() as connection:
        # Unblocked between the claim and the check: back in the queue, not counted either.
        assert queue.withhold(connection, "node-a", [again[0].id], 1004.0) == 0
    assert _dispatched(engine) == 1
    (third,) = _claim(engine, "node-a", now=1005.0)
    assert third.id == again[0].id and _dispatched(engine) == 2
