"""One stored message of a hosting, and what its owner may do to it alone: read it whole (the
viewer), release it while the hosting is blocked, delete it, or send it again to recipients that
failed. Each action writes a history row in the same transaction as its effect.

Every function takes the hosting's id and finds the message only within it: a message of
another hosting is "not found", exactly like one that never existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update

from scriptmail.catalogues import N_
from scriptmail.control.states import Actor, holds_mail
from scriptmail.model import HostingState, RecipientStatus
from scriptmail.store import activity, bus
from scriptmail.store.queue import free_message_bodies
from scriptmail.store.schema import bodies, hosting_events, hostings, messages, recipients

RELEASE, DELETE, RESEND = "release-one", "delete-one", "send-again"
_HELD = RecipientStatus.HELD.value
_FAILED = (RecipientStatus.BOUNCED.value, RecipientStatus.EXPIRED.value)
_DELETABLE = (RecipientStatus.HELD.value, RecipientStatus.QUEUED.value, RecipientStatus.DEFERRED.value)
MAX_CHOSEN = 1000  # recipients named in one re-send


class NotAllowed(Exception):
    """The action does not apply to this message now; `reason` says why, for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Recipient:
    id: int
    address: str
    status: str
    code: int | None
    text: str


@dataclass(frozen=True, slots=True)
class Stored:
    id: int
    hosting_id: int
    received_at: float
    sender: str
    size: int
    score: float
    score_reasons: str
    released_at: float | None
    data: bytes | None  # None once the body is freed
    recipients: list[Recipient]

    @property
    def held(self) -> int:
        return sum(1 for r in self.recipients if r.status == _HELD)

    @property
    def failed(self) -> list[Recipient]:
        return [r for r in self.recipients if r.status in _FAILED]


def find(connection: Connection, hosting_id: int, message_id: int) -> Stored | None:
    """The message with its body and recipients, if it is this hosting's."""
    row = connection.execute(
        select(messages.c.id, messages.c.hosting_id, messages.c.received_at, messages.c.envelope_from, messages.c.size,
               messages.c.score, messages.c.score_reasons, messages.c.released_at)
        .where(messages.c.id == message_id, messages.c.hosting_id == hosting_id)
    ).first()  # fmt: skip
    if row is None:
        return None
    found = connection.execute(select(bodies.c.data).where(bodies.c.message_id == message_id)).scalar()
    data = bytes(found) if found is not None else None
    people = [
        Recipient(r.id, r.address, r.status, r.last_code, r.last_text)
        for r in connection.execute(
            select(recipients.c.id, recipients.c.address, recipients.c.status, recipients.c.last_code, recipients.c.last_text)
            .where(recipients.c.message_id == message_id, recipients.c.hosting_id == hosting_id)
            .order_by(recipients.c.id)
            .limit(MAX_CHOSEN)
        )
    ]
    return Stored(row.id, row.hosting_id, row.received_at, row.envelope_from, row.size, row.score, row.score_reasons,
                  row.released_at, data, people)  # fmt: skip


LISTED = (RecipientStatus.HELD, RecipientStatus.QUEUED, RecipientStatus.DEFERRED, RecipientStatus.BOUNCED, RecipientStatus.EXPIRED)


def listing(connection: Connection, hosting_id: int, status: RecipientStatus, limit: int = 100) -> list[dict]:
    """The hosting's newest messages with a recipient in `status` (what one may act on), each with
    its subject, sender, how many recipients are in that status, and whether its body is kept."""
    if status not in LISTED:
        raise ValueError(status)
    ids = list(
        connection.execute(
            select(recipients.c.message_id)
            .where(recipients.c.hosting_id == hosting_id, recipients.c.status == status.value)
            .group_by(recipients.c.message_id)
            .order_by(recipients.c.message_id.desc())
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return []
    counts = dict(
        connection.execute(
            select(recipients.c.message_id, func.count())
            .where(recipients.c.message_id.in_(ids), recipients.c.status == status.value)
            .group_by(recipients.c.message_id)
        ).all()
    )
    kept = set(connection.execute(select(bodies.c.message_id).where(bodies.c.message_id.in_(ids))).scalars())
    rows = connection.execute(
        select(messages.c.id, messages.c.received_at, messages.c.envelope_from, messages.c.subject)
        .where(messages.c.id.in_(ids), messages.c.hosting_id == hosting_id)
        .order_by(messages.c.id.desc())
    )
    return [
        {"id": r.id, "received_at": r.received_at, "sender": r.envelope_from, "subject": r.subject,
         "count": counts.get(r.id, 0), "stored": r.id in kept}
        for r in rows
    ]  # fmt: skip


def release(connection: Connection, hosting_id: int, message_id: int, actor: Actor, now: float, reason: str = "") -> int:
    """Send one held message now; the hosting stays blocked and its other mail stays held."""
    _exists(connection, hosting_id, message_id)
    state = state_of(connection, hosting_id)
    if not holds_mail(state):
        raise NotAllowed(N_("Sending is not blocked: this email is not held."))
    if state is HostingState.PURGING:
        raise NotAllowed(N_("A purge is running: wait until it ends."))
    if actor is Actor.CUSTOMER and state is not HostingState.BLOCKED:
        # An automatic block (spam, bounce) is lifted as a whole, by a purge or by support.
        raise NotAllowed(N_("Only mail held by your own block can be released one email at a time."))
    released = connection.execute(
        update(recipients)
        .where(recipients.c.message_id == message_id, recipients.c.hosting_id == hosting_id, recipients.c.status == _HELD)
        .values(status=RecipientStatus.QUEUED.value, held_at=None, next_attempt_at=now, updated_at=now,
                last_text="released on its own by request")
    ).rowcount  # fmt: skip
    if not released:
        raise NotAllowed(N_("This email has no held recipient."))
    connection.execute(update(messages).where(messages.c.id == message_id).values(released_at=now))
    _history(connection, hosting_id, state, RELEASE, actor, now, message_id, released, reason)
    bus.announce(connection, bus.MAIL)
    return released


def delete(connection: Connection, hosting_id: int, message_id: int, actor: Actor, now: float, reason: str = "") -> int:
    """Delete one message that waits or is held: its recipients become purged, its body is freed."""
    _exists(connection, hosting_id, message_id)  # another hosting's message: not found, before anything else
    state = state_of(connection, hosting_id)
    deleted = connection.execute(
        update(recipients)
        .where(recipients.c.message_id == message_id, recipients.c.hosting_id == hosting_id,
               recipients.c.status.in_(_DELETABLE))
        .values(status=RecipientStatus.PURGED.value, held_at=None, updated_at=now, last_text="deleted on its own by request")
    ).rowcount  # fmt: skip
    if not deleted:
        raise NotAllowed(N_("Nothing of this email is waiting to be sent."))
    free_message_bodies(connection, {message_id})
    activity.bump(connection, [(hosting_id, now, {"purged": deleted})])
    _history(connection, hosting_id, state, DELETE, actor, now, message_id, deleted, reason)
    return deleted


def resend(
    connection: Connection,
    hosting_id: int,
    message_id: int,
    actor: Actor,
    now: float,
    addresses: Sequence[str] | None = None,
    reason: str = "",
) -> int:
    """Send a bounced or expired message again, to all its failed recipients or the chosen ones.

    Their attempt count starts again from zero, so the quota counts them as new mail; a hosting
    that does not send holds them like any new mail."""
    _exists(connection, hosting_id, message_id)  # another hosting's message: not found, before anything else
    state = state_of(connection, hosting_id)
    if connection.execute(select(func.count()).select_from(bodies).where(bodies.c.message_id == message_id)).scalar_one() == 0:
        raise NotAllowed(N_("The body of this email is no longer stored: it cannot be sent again."))
    conditions = [recipients.c.message_id == message_id, recipients.c.hosting_id == hosting_id, recipients.c.status.in_(_FAILED)]
    if addresses is not None:
        chosen = sorted({a.strip().lower() for a in addresses if a.strip()})
        if not chosen:
            raise NotAllowed(N_("Choose at least one recipient."))
        conditions.append(func.lower(recipients.c.address).in_(chosen))
    held = holds_mail(state)
    values = {"status": _HELD if held else RecipientStatus.QUEUED.value, "held_at": now if held else None,
              "attempts": 0, "next_attempt_at": now, "last_code": None, "updated_at": now, "last_text": "sent again by request"}  # fmt: skip
    count = connection.execute(update(recipients).where(*conditions).values(**values)).rowcount
    if not count:
        raise NotAllowed(N_("None of these recipients failed: there is nothing to send again."))
    _history(connection, hosting_id, state, RESEND, actor, now, message_id, count, reason)
    if not held:
        bus.announce(connection, bus.MAIL)
    return count


def state_of(connection: Connection, hosting_id: int) -> HostingState:
    """The hosting's state now (what the viewer offers depends on it)."""
    state = connection.execute(select(hostings.c.state).where(hostings.c.id == hosting_id)).scalar()
    if state is None:
        raise NotAllowed(N_("This service does not exist"))
    return HostingState(state)


def _exists(connection: Connection, hosting_id: int, message_id: int) -> None:
    found = connection.execute(
        select(messages.c.id).where(messages.c.id == message_id, messages.c.hosting_id == hosting_id)
    ).scalar()
    if found is None:
        raise LookupError(message_id)


def _history(connection, hosting_id, state, action, actor, now, message_id, count, reason) -> None:
    text = f"message {message_id}: {count} recipient(s)" + (f"; {reason}" if reason else "")
    connection.execute(
        insert(hosting_events).values(hosting_id=hosting_id, at=now, actor=actor.value, action=action,
                                      from_state=state.value, to_state=state.value, reason=text[:2000])
    )  # fmt: skip
