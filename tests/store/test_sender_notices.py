"""Notices to senders from the store's events, on both stores: who gets one and who does not,
and how it reads."""

from __future__ import annotations

import email
import email.policy

from sqlalchemy import Engine, select

from scriptmail.control.states import Action, Actor
from scriptmail.model import AttemptResult, Origin, RecipientStatus, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue, sender_notices
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state, expire_held
from scriptmail.store.schema import bodies, messages, notice_events, recipients

SETTINGS = sender_notices.NoticeSettings("gateway.test", "postmaster@gateway.test", per_hour=20, lifetime=5 * 86400)


def _hosting(engine: Engine, **changes) -> int:
    with for_writing(engine).begin() as connection:
        found = hosting_store.find_hosting(connection, name="site.test") or hosting_store.add_hosting(connection, "site.test", "owner@site.test")
        if changes:
            hosting_store.update_hosting(connection, "site.test", **changes)
        return found.id


def _fail(engine: Engine, *addresses: str, now: float = 1000.0, status: RecipientStatus = RecipientStatus.BOUNCED, **result) -> int:
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        message_id = queue.insert_submission(
            connection,
            Submission(hosting_id, "web@site.test", addresses, b"Subject: order 17\r\nX-Shop: 1\r\n\r\nbody\r\n", Origin.SMTP, "local", subject="order 17"),
            now,
        )
        claimed = queue.claim_due(connection, "node", 100, 600, now)
        queue.record_results(
            connection, "node",
            [AttemptResult(r.id, status, 550 if status is RecipientStatus.BOUNCED else 451, "5.7.1 refused" if status is RecipientStatus.BOUNCED else "4.2.0 busy", "mx.x.test[192.0.2.1]:25", now, 0.1, hosting_id=hosting_id, **result) for r in claimed],
            now,
        )  # fmt: skip
    return message_id


def _write(engine: Engine, now: float = 1010.0) -> list[tuple[bytes, str]]:
    """Write the waiting notices; the notices queued, as (bytes, envelope sender)."""
    with for_writing(engine).begin() as connection:
        sender_notices.write_pending(connection, SETTINGS, now)
    with engine.connect() as connection:
        rows = connection.execute(
            select(bodies.c.data, messages.c.envelope_from).join(messages, messages.c.id == bodies.c.message_id).where(messages.c.script == "scriptmail delivery notice")
        )
        return [(bytes(row.data), row.envelope_from) for row in rows]


def _outcomes(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [row.outcome for row in connection.execute(select(notice_events).order_by(notice_events.c.id))]


def test_one_notice_in_the_hostings_language_for_every_failed_recipient_of_a_message(engine: Engine) -> None:
    _hosting(engine, language="es")
    original = _fail(engine, "a@x.test", "b@x.test")
    ((data, envelope_from),) = _write(engine)
    assert envelope_from == ""  # the null sender
    dsn = email.message_from_bytes(data, policy=email.policy.default)
    assert dsn["Subject"] == "Correo no entregado devuelto al remitente" and dsn["To"] == "web@site.test"
    readable, status, headers = dsn.iter_parts()
    assert "«order 17»" in readable.get_content()
    _, *blocks = status.get_payload()
    assert [(b["Final-Recipient"], b["Status"], b["Remote-MTA"]) for b in blocks] == [
        ("rfc822; a@x.test", "5.7.1", "dns; mx.x.test"), ("rfc822; b@x.test", "5.7.1", "dns; mx.x.test"),
    ]  # fmt: skip
    assert "X-Shop: 1" in headers.get_content()
    assert _outcomes(engine) == ["sent", "sent"]
    with engine.connect() as connection:
        # The original's body was kept for the notice, and freed once it was written.
        assert connection.execute(select(bodies).where(bodies.c.message_id == original)).first() is None
    assert _write(engine, 1020.0) != [] and len(_write(engine, 1020.0)) == 1  # written once only


def test_no_notice_with_the_hostings_switch_off(engine: Engine) -> None:
    _hosting(engine, notices=False)
    _fail(engine, "a@x.test")
    assert _write(engine) == []
    assert _outcomes(engine) == ["switched-off"]


def test_no_notice_for_mail_expired_while_the_hosting_was_blocked_as_spam(engine: Engine) -> None:
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        change_state(connection, "site.test", Action.DETECT_SPAM, Actor.POLICY, 1000.0, reason="test")
        queue.insert_submission(connection, Submission(hosting_id, "web@site.test", ("a@x.test",), b"\r\nx", Origin.SMTP, "local"), 1000.0)
        assert expire_held(connection, held_before=2000.0, now=2000.0) == 1
    with engine.connect() as connection:
        assert connection.execute(select(recipients.c.status)).scalar() == "expired"
    assert _outcomes(engine) == []  # no event at all
    # A bounce recorded before the block waits; the block stops its notice too.
    assert _write(engine) == []


def _claim_then_fail(engine: Engine, address: str, before_failure=None, now: float = 1000.0) -> None:
    """Claim one recipient, run `before_failure(connection)` (a state change while it is in
    delivery), then record its bounce."""
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        queue.insert_submission(connection, Submission(hosting_id, "web@site.test", (address,), b"Subject: s\r\n\r\nx", Origin.SMTP, "local"), now)
        (claimed,) = queue.claim_due(connection, "node", 100, 600, now)
    with for_writing(engine).begin() as connection:
        if before_failure is not None:
            before_failure(connection)
        queue.record_results(
            connection, "node",
            [AttemptResult(claimed.id, RecipientStatus.BOUNCED, 550, "5.7.1 refused", "mx.x.test[192.0.2.1]:25", now + 1, 0.1, hosting_id=hosting_id)],
            now + 1,
        )  # fmt: skip


def test_a_bounce_while_the_hosting_was_blocked_as_spam_gets_no_notice_after_the_block_ends(engine: Engine) -> None:
    _claim_then_fail(engine, "a@x.test", lambda c: change_state(c, "site.test", Action.DETECT_SPAM, Actor.POLICY, 1000.5, reason="test"))
    with for_writing(engine).begin() as connection:
        change_state(connection, "site.test", Action.UNBLOCK, Actor.OPERATOR, 1002.0)  # lifted before the notice is written
    assert _write(engine) == []
    assert _outcomes(engine) == ["spam-block"]


def test_a_bounce_before_a_spam_block_still_gets_its_notice(engine: Engine) -> None:
    _claim_then_fail(engine, "a@x.test")
    with for_writing(engine).begin() as connection:
        change_state(connection, "site.test", Action.DETECT_SPAM, Actor.POLICY, 1002.0, reason="test")
    ((data, _),) = _write(engine)
    assert b"a@x.test" in data
    assert _outcomes(engine) == ["sent"]


def test_of_one_messages_recipients_only_those_failed_during_the_block_go_unnotified(engine: Engine) -> None:
    hosting_id = _hosting(engine)
    with for_writing(engine).begin() as connection:
        queue.insert_submission(connection, Submission(hosting_id, "web@site.test", ("a@x.test", "b@x.test"), b"\r\nx", Origin.SMTP, "local"), 1000.0)
        first, second = queue.claim_due(connection, "node", 100, 600, 1000.0)

    def bounce(connection, recipient, at: float) -> None:
        queue.record_results(connection, "node", [AttemptResult(recipient.id, RecipientStatus.BOUNCED, 550, "5.1.1 no such user", "mx", at, 0.1, hosting_id=hosting_id)], at)

    with for_writing(engine).begin() as connection:
        bounce(connection, first, 1001.0)
        change_state(connection, "site.test", Action.DETECT_SPAM, Actor.POLICY, 1002.0, reason="test")
        bounce(connection, second, 1003.0)
    ((data, _),) = _write(engine)
    assert b"a@x.test" in data and b"b@x.test" not in data
    assert sorted(_outcomes(engine)) == ["sent", "spam-block"]


def test_an_event_from_before_the_fact_was_recorded_goes_by_the_state_now(engine: Engine) -> None:
    _claim_then_fail(engine, "a@x.test")
    with for_writing(engine).begin() as connection:
        connection.execute(notice_events.update().values(quiet=None))  # written by an older version
        change_state(connection, "site.test", Action.DETECT_SPAM, Actor.POLICY, 1002.0, reason="test")
    assert _write(engine) == []
    assert _outcomes(engine) == ["spam-block"]


def test_a_delay_warning_goes_once_with_action_delayed(engine: Engine) -> None:
    _fail(engine, "slow@x.test", status=RecipientStatus.DEFERRED, next_attempt_at=1300.0, warn_delay=True)
    ((data, _),) = _write(engine)
    dsn = email.message_from_bytes(data, policy=email.policy.default)
    _, *blocks = list(dsn.iter_parts())[1].get_payload()
    assert dsn["Subject"] == "Delayed mail (still being retried)"
    assert (blocks[0]["Action"], blocks[0]["Status"]) == ("delayed", "4.2.0") and blocks[0]["Will-Retry-Until"]
    with for_writing(engine).begin() as connection:  # deferred again, still past the threshold: no second warning
        (row,) = connection.execute(select(recipients.c.id, recipients.c.hosting_id).where(recipients.c.address == "slow@x.test")).all()
        connection.execute(recipients.update().where(recipients.c.id == row.id).values(status="sending", lease_owner="node"))
        queue.record_results(
            connection, "node", [AttemptResult(row.id, RecipientStatus.DEFERRED, 451, "4.2.0 busy", "mx", 1300.0, 0.1, 1900.0, row.hosting_id, True)], 1300.0
        )
    assert len(_write(engine, 1400.0)) == 1
