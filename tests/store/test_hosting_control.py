"""State changes in the store: their effect on the hosting's mail, and their history."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from scriptmail.control.states import Action, Actor, TransitionNotAllowed
from scriptmail.model import HostingState, Origin, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, expire_held, held_hostings, history, purge_batch
from scriptmail.store.schema import bodies, notice_events, recipients


def _submit(engine: Engine, address: str, now: float) -> None:
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.find_hosting(connection, name="site.test")
        queue.insert_submission(
            connection, Submission(hosting.id, "w@site.test", (address,), b"Subject: s\r\n\r\nb\r\n", Origin.SMTP, "c"), now
        )


def _change(engine: Engine, action: Action, now: float, actor: Actor = Actor.CUSTOMER):
    with for_writing(engine).begin() as connection:
        return change_state(connection, "site.test", action, actor, now, reason=f"{action} at {now}")


def _statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(recipients.c.address, recipients.c.status)).all())


@pytest.fixture
def site(engine: Engine) -> Engine:
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "site.test", "owner@site.test")
    return engine


def test_block_holds_waiting_mail_and_mail_that_arrives_later(site: Engine) -> None:
    _submit(site, "before@x.test", 100.0)
    change = _change(site, Action.BLOCK, 110.0)
    assert (change.before, change.after, change.held) == (HostingState.ACTIVE, HostingState.BLOCKED, 1)
    _submit(site, "during@x.test", 120.0)
    assert _statuses(site) == {"before@x.test": "held", "during@x.test": "held"}
    with site.connect() as connection:
        assert queue.claim_due(connection, "n", 10, 60, 200.0) == []
        assert len(held_hostings(connection)) == 1


def test_unblock_puts_held_mail_back_due_at_once(site: Engine) -> None:
    _change(site, Action.BLOCK, 100.0)
    _submit(site, "a@x.test", 110.0)
    assert _change(site, Action.UNBLOCK, 120.0).released == 1
    with for_writing(site).begin() as connection:
        (due,) = queue.claim_due(connection, "n", 10, 60, 120.0)
    assert due.address == "a@x.test"


def test_purge_spares_mail_that_arrived_after_it_began(site: Engine) -> None:
    for number in range(7):
        _submit(site, f"old{number}@x.test", 100.0)
    _change(site, Action.BLOCK, 110.0)
    _change(site, Action.PURGE, 120.0)
    _submit(site, "new@x.test", 130.0)
    with for_writing(site).begin() as connection:
        assert purge_batch(connection, "site.test", now=131.0, limit=5) == 5
    with for_writing(site).begin() as connection:
        assert purge_batch(connection, "site.test", now=132.0, limit=5) == 2
        assert purge_batch(connection, "site.test", now=133.0, limit=5) == 0
    _change(site, Action.PURGE_DONE, 134.0, actor=Actor.SYSTEM)
    statuses = _statuses(site)
    assert statuses.pop("new@x.test") == "queued"  # held while purging, released when it ended
    assert set(statuses.values()) == {"purged"}


def test_a_refused_change_leaves_state_mail_and_history_alone(site: Engine) -> None:
    _submit(site, "a@x.test", 100.0)
    with pytest.raises(TransitionNotAllowed, match="block sending first"):
        _change(site, Action.PURGE, 110.0)
    with site.connect() as connection:
        assert history(connection, "site.test") == []
        assert hosting_store.find_hosting(connection, name="site.test").state is HostingState.ACTIVE
    assert _statuses(site) == {"a@x.test": "queued"}


def test_history_is_newest_first_with_actor_and_reason(site: Engine) -> None:
    _change(site, Action.BLOCK, 100.0)
    _change(site, Action.UNBLOCK, 200.0, actor=Actor.OPERATOR)
    with site.connect() as connection:
        rows = history(connection, "site.test")
    assert [(r["at"], r["actor"], r["from_state"], r["to_state"], r["reason"]) for r in rows] == [
        (200.0, "operator", "blocked", "active", "unblock at 200.0"),
        (100.0, "customer", "active", "blocked", "block at 100.0"),
    ]


def test_held_mail_expires_72_hours_after_it_was_held(site: Engine) -> None:
    _change(site, Action.BLOCK, 1000.0)
    _submit(site, "waiting@x.test", 1000.0)
    hold = 72 * 3600
    with for_writing(site).begin() as connection:
        assert expire_held(connection, held_before=1000.0 + hold - 1 - hold, now=1000.0 + hold - 1) == 0
    assert _statuses(site) == {"waiting@x.test": "held"}
    with for_writing(site).begin() as connection:
        assert expire_held(connection, held_before=1000.0 + hold + 1 - hold, now=1000.0 + hold + 1) == 1
    assert _statuses(site) == {"waiting@x.test": "expired"}
    with site.connect() as connection:
        # The body stays only until the notice to its sender, waiting for it, is written.
        (event,) = connection.execute(select(notice_events)).all()
        assert (event.action, event.done_at) == ("failed", None)
        assert len(connection.execute(select(bodies)).all()) == 1
        (text,) = connection.execute(select(recipients.c.last_text)).scalars()
    assert text.startswith("held for 72 h")


def test_a_plan_change_is_in_the_history_but_is_no_release(engine: Engine) -> None:
    """The customer sees why the quota changed; the policy does not take it for an unblock (which
    would forget the traffic that counts towards the next automatic block)."""
    from scriptmail.store import activity
    from scriptmail.store.hosting_control import change_plan

    with for_writing(engine).begin() as connection:
        hosting = hosting_store.add_hosting(connection, "planned.test", "owner@planned.test", plan="starter")
        change_state(connection, "planned.test", Action.BLOCK, Actor.CUSTOMER, 1000.0)
        change_state(connection, "planned.test", Action.UNBLOCK, Actor.CUSTOMER, 2000.0)
        assert change_plan(connection, "planned.test", "pro", Actor.OPERATOR, 3000.0, reason="upgrade") == "starter"
        assert change_plan(connection, "planned.test", "pro", Actor.OPERATOR, 4000.0) == "pro"  # no change, no entry
        with pytest.raises(hosting_store.HostingError):
            change_plan(connection, "ghost.test", "pro", Actor.OPERATOR, 4000.0)
    with engine.connect() as connection:
        latest = history(connection, "planned.test")[0]
        assert latest["action"] == "plan" and latest["reason"] == "plan starter → pro; upgrade"
        assert latest["from_state"] == latest["to_state"] == "active"
        assert activity.last_releases(connection, [hosting.id]) == {hosting.id: 2000.0}
        assert hosting_store.find_hosting(connection, name="planned.test").plan == "pro"
