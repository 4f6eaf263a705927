"""Applying a state change to a hosting: the decision (control.states), its effect on the
hosting's mail, and the history row, in one transaction.

Blocking holds every waiting recipient of the hosting; unblocking puts held recipients back in
the queue, due at once. New mail for a hosting that does not send is held as it is committed
(store.queue.insert_submissions), so nothing slips between the two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, literal, select, update

from scriptmail.control.states import Action, Actor, Context, TransitionNotAllowed, decide, holds_mail
from scriptmail.dsn.decide import QUIET_STATES
from scriptmail.model import HostingState, RecipientStatus
from scriptmail.store import activity, bus, webhooks
from scriptmail.store.hostings import SYSTEM_HOSTING, HostingError
from scriptmail.store.queue import free_bodies, free_message_bodies
from scriptmail.store.schema import hosting_events, hostings, notice_events, recipients
from scriptmail.webhooks.events import EventType

_WAITING = (RecipientStatus.QUEUED.value, RecipientStatus.DEFERRED.value)

# How often delivery agents reread which hostings do not send, whatever the bus says. A change
# that stops sending waits for every live node's acknowledgement on the bus (store/bus.py), and
# at most this long and a little more, so that afterwards no transaction starts.
STATE_REFRESH = 1.0


@dataclass(frozen=True, slots=True)
class Change:
    hosting: str
    before: HostingState
    after: HostingState
    held: int = 0  # recipients held by this change
    released: int = 0  # held recipients put back in the queue

    @property
    def stops_sending(self) -> bool:
        return holds_mail(self.after) and not holds_mail(self.before)

    @property
    def settle_seconds(self) -> float:
        """The longest whoever asked waits before saying "done" after a change that stops sending:
        by then every delivery agent has reread the states, bus or not."""
        return STATE_REFRESH + 0.5 if self.stops_sending else 0.0


def change_state(
    connection: Connection,
    name: str,
    action: Action,
    actor: Actor,
    now: float,
    reason: str = "",
    target: HostingState | None = None,
    context: Context | None = None,
    evidence: dict | None = None,
) -> Change:
    """Decide and apply; raises TransitionNotAllowed (nothing changes) or HostingError.

    `evidence` is what an automatic block saw (control.evidence); it is kept with the history row
    and sent with the `hosting.state_changed` webhook event, written in this same transaction."""
    query = select(hostings.c.id, hostings.c.state).where(hostings.c.name == name)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()  # intake takes this row FOR SHARE while it commits mail
    row = connection.execute(query).first()
    if row is None:
        raise HostingError(f"no hosting named {name!r}")
    before = HostingState(row.state)
    if name == SYSTEM_HOSTING:
        raise TransitionNotAllowed(before, action, "the platform's own mail (notices, reports) is never blocked")
    if context is None:  # only a purge of a spam block asks whether it is a repeat
        repeat = action is Action.PURGE and before is HostingState.SPAM and repeated_spam(connection, row.id, now)
        context = Context(repeat_spam=repeat)
    after = decide(before, action, actor, target=target, context=context)
    values: dict = {"state": after.value}
    if action is Action.PURGE:
        values["purge_started_at"] = now
    elif before is HostingState.PURGING:
        values["purge_started_at"] = None
    connection.execute(update(hostings).where(hostings.c.id == row.id).values(**values))
    connection.execute(
        insert(hosting_events).values(
            hosting_id=row.id,
            at=now,
            actor=actor.value,
            action=action.value,
            from_state=before.value,
            to_state=after.value,
            reason=reason[:2000],
            evidence=json.dumps(evidence, ensure_ascii=False) if evidence else "",
        )
    )
    if webhooks.wants(connection, row.id, EventType.STATE_CHANGED):
        webhooks.emit(connection, [webhooks.Event(row.id, EventType.STATE_CHANGED, {
            "hosting": name, "from": before.value, "to": after.value, "actor": actor.value, "action": action.value,
            "reason": reason[:2000], "evidence": evidence,
        })], now)  # fmt: skip
    held = released = 0
    if holds_mail(after) and not holds_mail(before):
        held = connection.execute(
            update(recipients)
            .where(recipients.c.hosting_id == row.id, recipients.c.status.in_(_WAITING))
            .values(status=RecipientStatus.HELD.value, held_at=now, updated_at=now)
        ).rowcount
        activity.bump(connection, [(row.id, now, {"held": held})])
    elif holds_mail(before) and not holds_mail(after):
        released = connection.execute(
            update(recipients)
            .where(recipients.c.hosting_id == row.id, recipients.c.status == RecipientStatus.HELD.value)
            .values(status=RecipientStatus.QUEUED.value, held_at=None, next_attempt_at=now, updated_at=now)
        ).rowcount
    bus.announce(connection, bus.HOSTINGS)  # delivery rereads the states at once
    if released:
        bus.announce(connection, bus.MAIL)
    return Change(name, before, after, held, released)


REPEAT_SPAM_SECONDS = 7 * 24 * 3600


PLAN_CHANGE = "plan"  # a history entry that is not a state change: from_state == to_state


def change_plan(connection: Connection, name: str, plan: str, actor: Actor, now: float, reason: str = "") -> str:
    """Give a hosting another plan and say so in its history (the customer sees why its quota
    changed). Returns the plan it had. Not a state change: the policy's "sending since" ignores it."""
    row = connection.execute(select(hostings.c.id, hostings.c.plan, hostings.c.state).where(hostings.c.name == name)).first()
    if row is None:
        raise HostingError(f"no hosting named {name!r}")
    if row.plan != plan:
        connection.execute(update(hostings).where(hostings.c.id == row.id).values(plan=plan))
        connection.execute(
            insert(hosting_events).values(
                hosting_id=row.id, at=now, actor=actor.value, action=PLAN_CHANGE, from_state=row.state, to_state=row.state,
                reason=f"plan {row.plan} → {plan}" + (f"; {reason}" if reason else ""),
            )
        )  # fmt: skip
    return row.plan


def repeated_spam(connection: Connection, hosting_id: int, now: float) -> bool:
    """Two automatic spam blocks within 7 days: only an operator may lift the second (DESIGN.md §3)."""
    count = connection.execute(
        select(func.count())
        .select_from(hosting_events)
        .where(
            hosting_events.c.hosting_id == hosting_id,
            hosting_events.c.action == Action.DETECT_SPAM.value,
            hosting_events.c.at >= now - REPEAT_SPAM_SECONDS,
        )
    ).scalar_one()
    return count >= 2


def history(connection: Connection, name: str, limit: int = 100) -> list[dict]:
    """The latest state changes of a hosting, newest first; an automatic block with its evidence
    (control.evidence, None for the others) and whether an operator marked it a false positive."""
    query = (
        select(hosting_events.c.id, hosting_events.c.at, hosting_events.c.actor, hosting_events.c.action,
               hosting_events.c.from_state, hosting_events.c.to_state, hosting_events.c.reason, hosting_events.c.evidence,
               hosting_events.c.false_positive_at, hosting_events.c.false_positive_by, hosting_events.c.false_positive_note)
        .join(hostings, hostings.c.id == hosting_events.c.hosting_id)
        .where(hostings.c.name == name)
        .order_by(hosting_events.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [{**row._mapping, "evidence": json.loads(row.evidence) if row.evidence else None} for row in connection.execute(query)]


def held_hostings(connection: Connection) -> set[int]:
    """Ids of the hostings whose mail is held now (a short list: most hostings send)."""
    sending = [state.value for state in HostingState if not holds_mail(state)]
    return set(connection.execute(select(hostings.c.id).where(hostings.c.state.not_in(sending))).scalars())


def purging_hostings(connection: Connection) -> list[str]:
    return list(connection.execute(select(hostings.c.name).where(hostings.c.state == HostingState.PURGING.value)).scalars())


def purge_batch(connection: Connection, name: str, now: float, limit: int = 5000) -> int:
    """Purge up to `limit` of the hosting's waiting or held recipients that arrived before the purge
    began (mail that came in during the purge stays held); free bodies nobody needs any more.

    Small batches, each its own transaction, so a million held recipients never stall the store.
    Returns 0 once nothing is left, or when the hosting is no longer purging.
    """
    row = connection.execute(
        select(hostings.c.id, hostings.c.state, hostings.c.purge_started_at).where(hostings.c.name == name)
    ).first()
    if row is None or row.state != HostingState.PURGING.value or row.purge_started_at is None:
        return 0
    doomed = (
        select(recipients.c.id)
        .where(
            recipients.c.hosting_id == row.id,
            recipients.c.status.in_([*_WAITING, RecipientStatus.HELD.value]),
            recipients.c.queued_at <= row.purge_started_at,
        )
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        doomed = doomed.with_for_update(skip_locked=True)
    # One statement with the selection inside: no list of thousands of ids goes back and forth.
    purged = list(
        connection.execute(
            update(recipients)
            .where(recipients.c.id.in_(doomed.scalar_subquery()))
            .values(status=RecipientStatus.PURGED.value, held_at=None, updated_at=now, last_text="purged by request")
            .returning(recipients.c.message_id)
        ).scalars()
    )
    if purged:
        free_message_bodies(connection, set(purged))
        activity.bump(connection, [(row.id, now, {"purged": len(purged)})])
    return len(purged)


def expire_held(connection: Connection, held_before: float, now: float, limit: int = 5000) -> int:
    """Held recipients held since before `held_before` expire (final, bodies freed, kept in the log)."""
    rows = connection.execute(
        select(recipients.c.id, recipients.c.hosting_id)
        .where(recipients.c.status == RecipientStatus.HELD.value, recipients.c.held_at < held_before)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    hours = (now - held_before) / 3600
    expired = connection.execute(
        update(recipients)
        .where(recipients.c.id.in_(ids), recipients.c.status == RecipientStatus.HELD.value)
        .values(
            status=RecipientStatus.EXPIRED.value,
            updated_at=now,
            last_text=f"held for {hours:g} h while sending was blocked, and not released",
        )
        .returning(recipients.c.id, recipients.c.hosting_id)
    ).all()
    activity.bump(connection, ((row.hosting_id, now, {"expired": 1}) for row in expired))
    text = f"held for {hours:g} h while sending was blocked, and not released"
    webhooks.recipient_events(connection, ((row.id, row.hosting_id, EventType.EXPIRED, None, text) for row in expired), now)
    # Their senders are told, unless the hosting is blocked as spam or bounce: notices for mail a
    # compromised site sent would be backscatter.
    quiet = [state.value for state in QUIET_STATES]
    connection.execute(
        insert(notice_events).from_select(
            ["recipient_id", "message_id", "action", "created_at", "quiet"],
            select(recipients.c.id, recipients.c.message_id, literal("failed"), literal(now), literal(0))
            .select_from(recipients.join(hostings, hostings.c.id == recipients.c.hosting_id))
            .where(recipients.c.id.in_(ids), recipients.c.status == RecipientStatus.EXPIRED.value, hostings.c.state.not_in(quiet)),
        )
    )
    free_bodies(connection, ids, now)
    return len(ids)
