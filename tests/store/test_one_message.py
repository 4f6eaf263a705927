"""One message's actions in the store, on both backends: who may release in which state, what
delete and send-again change, the history row each writes, and another hosting's message not
found."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, update

from scriptmail.control.states import Action, Actor
from scriptmail.model import HostingState, Origin, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import one_message, queue
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, history
from scriptmail.store.schema import bodies, recipients


@pytest.fixture
def site(engine: Engine) -> Engine:
    with for_writing(engine).begin() as connection:
        hosting_store.add_hosting(connection, "site.test", "owner@site.test")
        hosting_store.add_hosting(connection, "other.test", "owner@other.test")
    return engine


def _submit(engine: Engine, to: tuple[str, ...], now: float, name: str = "site.test") -> tuple[int, int]:
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.find_hosting(connection, name=name)
        message_id = queue.insert_submission(
            connection, Submission(hosting.id, "w@site.test", to, b"Subject: s\r\n\r\nb\r\n", Origin.SMTP, "c"), now
        )
        return hosting.id, message_id


def _do(engine: Engine, operation, *args, **kwargs):
    with for_writing(engine).begin() as connection:
        return operation(connection, *args, **kwargs)


def _statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(recipients.c.address, recipients.c.status)).all())


def test_a_released_message_is_claimed_as_released_and_the_rest_stay_held(site: Engine) -> None:
    _do(site, change_state, "site.test", Action.BLOCK, Actor.CUSTOMER, 100.0)
    hosting, first = _submit(site, ("a@x.test",), 110.0)
    _submit(site, ("b@x.test",), 111.0)
    assert _do(site, one_message.release, hosting, first, Actor.CUSTOMER, 120.0) == 1
    assert _statuses(site) == {"a@x.test": "queued", "b@x.test": "held"}
    (due,) = _do(site, queue.claim_due, "n", 10, 60, 120.0)
    assert (due.address, due.released) == ("a@x.test", True)
    with site.connect() as connection:
        (event, *_) = history(connection, "site.test")
    assert (event["action"], event["actor"], event["from_state"], event["to_state"]) == (
        "release-one",
        "customer",
        "blocked",
        "blocked",
    )


def test_release_needs_the_owners_own_block_unless_support_asks(site: Engine) -> None:
    hosting, message = _submit(site, ("a@x.test",), 110.0)
    with pytest.raises(one_message.NotAllowed, match="not blocked"):
        _do(site, one_message.release, hosting, message, Actor.CUSTOMER, 120.0)
    _do(site, change_state, "site.test", Action.SET, Actor.OPERATOR, 121.0, target=HostingState.SPAM)
    _do(site, lambda c: c.execute(update(recipients).values(status="held", held_at=121.0)))
    with pytest.raises(one_message.NotAllowed, match="your own block"):
        _do(site, one_message.release, hosting, message, Actor.CUSTOMER, 122.0)
    assert _do(site, one_message.release, hosting, message, Actor.OPERATOR, 123.0) == 1


def test_another_hostings_message_is_not_found_by_any_action(site: Engine) -> None:
    _do(site, change_state, "other.test", Action.BLOCK, Actor.CUSTOMER, 100.0)
    _, foreign = _submit(site, ("a@x.test",), 110.0, name="other.test")
    with site.connect() as connection:
        mine = hosting_store.find_hosting(connection, name="site.test").id
        assert one_message.find(connection, mine, foreign) is None
    for operation in (one_message.release, one_message.delete, one_message.resend):
        with pytest.raises(LookupError):
            _do(site, operation, mine, foreign, Actor.CUSTOMER, 120.0)
    assert _statuses(site) == {"a@x.test": "held"}


def test_delete_purges_and_frees_the_body_and_send_again_restarts_the_count(site: Engine) -> None:
    hosting, message = _submit(site, ("gone@x.test", "wait@x.test"), 110.0)
    _do(
        site,
        lambda c: c.execute(
            update(recipients).where(recipients.c.address == "gone@x.test").values(status="bounced", attempts=3, last_code=550)
        ),
    )
    with pytest.raises(one_message.NotAllowed, match="at least one"):
        _do(site, one_message.resend, hosting, message, Actor.CUSTOMER, 115.0, addresses=[" "])
    with pytest.raises(one_message.NotAllowed, match="None of these"):
        _do(site, one_message.resend, hosting, message, Actor.CUSTOMER, 115.0, addresses=["wait@x.test"])
    assert _do(site, one_message.resend, hosting, message, Actor.CUSTOMER, 120.0, addresses=["GONE@x.test"]) == 1
    with site.connect() as connection:
        row = connection.execute(
            select(recipients.c.status, recipients.c.attempts).where(recipients.c.address == "gone@x.test")
        ).one()
    assert tuple(row) == ("queued", 0)  # attempt count from zero: the quota counts it as new mail
    assert _do(site, one_message.delete, hosting, message, Actor.CUSTOMER, 130.0) == 2
    assert _statuses(site) == {"gone@x.test": "purged", "wait@x.test": "purged"}
    with site.connect() as connection:
        assert connection.execute(select(bodies.c.message_id)).all() == []
    with pytest.raises(one_message.NotAllowed, match="no longer stored"):
        _do(site, one_message.resend, hosting, message, Actor.CUSTOMER, 140.0)
    with pytest.raises(one_message.NotAllowed, match="Nothing of this email"):
        _do(site, one_message.delete, hosting, message, Actor.CUSTOMER, 140.0)


def test_sending_again_while_blocked_holds_the_mail(site: Engine) -> None:
    hosting, message = _submit(site, ("gone@x.test", "wait@x.test"), 110.0)
    _do(site, lambda c: c.execute(update(recipients).where(recipients.c.address == "gone@x.test").values(status="expired")))
    _do(site, change_state, "site.test", Action.BLOCK, Actor.CUSTOMER, 115.0)
    assert _do(site, one_message.resend, hosting, message, Actor.CUSTOMER, 120.0) == 1
    assert _statuses(site) == {"gone@x.test": "held", "wait@x.test": "held"}
