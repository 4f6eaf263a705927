"""Queue operations: commit a submission, claim due recipients with a lease, record outcomes.

Each function takes an open connection inside a transaction, so the writer can group many of
them into one commit. A claimed recipient's ``next_attempt_at`` is set to its lease expiry: a
lease left by a crashed worker simply becomes due again and is claimed like any other row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, and_, bindparam, case, delete, exists, func, insert, literal, or_, select, update

from scriptmail.control import quota
from scriptmail.control.content import HIGH_SCORE
from scriptmail.control.policy import is_unknown_user
from scriptmail.control.quota import QuotaGate
from scriptmail.control.states import holds_mail
from scriptmail.dsn.decide import QUIET_STATES
from scriptmail.model import (
    FINAL_STATUSES,
    AttemptResult,
    DueRecipient,
    HostingState,
    RecipientStatus,
    Submission,
)
from scriptmail.store import activity, pipeline, suppressions, webhooks
from scriptmail.store.domains import count_from_domains
from scriptmail.store.schema import attempts, bodies, hostings, messages, notice_events, recipients
from scriptmail.suppression.rules import REQUEUE_WINDOW, describe, match
from scriptmail.webhooks.events import EventType, iso

_CLAIMABLE = (RecipientStatus.QUEUED.value, RecipientStatus.DEFERRED.value, RecipientStatus.SENDING.value)
_FINAL = tuple(status.value for status in FINAL_STATUSES)


# Built once: the writer queues them for its COMMIT's round trip (store.pipeline).
_INSERT_BODY = insert(bodies)
_INSERT_RECIPIENT = insert(recipients)
_INSERT_ATTEMPT = insert(attempts)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def insert_submissions(connection: Connection, items: list[tuple[Submission, float]]) -> list[int]:
    """Store many messages, their bodies and one queued row per recipient; return their queue ids.

    A few statements whatever the number of messages: this is the writer's hot path.
    """
    if not items:
        return []
    hosting_ids = {submission.hosting_id for submission, _ in items}
    states = select(hostings.c.id, hostings.c.state).where(hostings.c.id.in_(hosting_ids))
    if connection.dialect.name == "postgresql":
        # A BLOCK takes the hosting row FOR UPDATE: it waits for this commit, or this waits for it.
        states = states.with_for_update(read=True)
    # Mail for a hosting that does not send (blocked, purging, spam, bounce) is held from the start.
    holding = {hosting_id for hosting_id, state in connection.execute(states) if holds_mail(HostingState(state))}
    message_ids = _insert_messages(
        connection,
        [
            {
                "hosting_id": submission.hosting_id,
                "received_at": now,
                "envelope_from": submission.envelope_from,
                "subject": submission.subject,
                "message_id": submission.message_id,
                "size": len(submission.data),
                "origin": submission.origin.value,
                "client": submission.client,
                "script": submission.script,
                "cwd": submission.cwd,
                "command": submission.command,
                "score": submission.score,
                "score_reasons": submission.score_reasons[:2000],
            }
            for submission, now in items
        ],
    )
    pipeline.later(
        connection,
        _INSERT_BODY,
        [{"message_id": message_id, "data": submission.data} for message_id, (submission, _) in zip(message_ids, items)],
    )
    pipeline.later(
        connection,
        _INSERT_RECIPIENT,
        [
            {
                "message_id": message_id,
                "hosting_id": submission.hosting_id,
                "address": address,
                "domain": domain_of(address),
                "status": RecipientStatus.QUEUED.value,
                "queued_at": now,
                "next_attempt_at": now,
                "attempts": 0,
                "updated_at": now,
            }
            for message_id, (submission, now) in zip(message_ids, items)
            for address in submission.recipients
        ],
    )
    if holding:
        connection.execute(
            update(recipients)
            .where(recipients.c.message_id.in_(message_ids), recipients.c.hosting_id.in_(holding))
            .values(status=RecipientStatus.HELD.value, held_at=items[0][1])
        )
    activity.bump(
        connection,
        (
            (submission.hosting_id, now, {
                "accepted": 1, "flagged": int(submission.score >= HIGH_SCORE),
                "held": len(submission.recipients) if submission.hosting_id in holding else 0,
            })
            for submission, now in items
        ),
    )  # fmt: skip
    activity.count_scripts(
        connection,
        ((submission.hosting_id, submission.script or submission.cwd, len(submission.recipients), now) for submission, now in items),
    )
    count_from_domains(connection, ((s.hosting_id, s.from_domain, s.dkim, now) for s, now in items))
    return message_ids


def _insert_messages(connection: Connection, rows: list[dict]) -> list[int]:
    """Insert the message rows in one statement; return their ids in the order of `rows`.

    SQLite does not promise the order in which RETURNING gives the rows of a multi-row INSERT, so
    SQLAlchemy, asked for the rows' order, inserts them one statement each: ten statements for
    ten messages, each a trip through the GIL while the writer holds the store's write lock.
    Within one statement SQLite gives each new row an id above every id before it, so the ids
    sorted are the rows' ids in order. PostgreSQL keeps the order in one statement.
    """
    if connection.dialect.name == "sqlite":
        return sorted(connection.execute(insert(messages).returning(messages.c.id), rows).scalars())
    return list(connection.execute(insert(messages).returning(messages.c.id, sort_by_parameter_order=True), rows).scalars())


def insert_submission(connection: Connection, submission: Submission, now: float) -> int:
    """Store one message (tests and tools; intake goes through insert_submissions in bulk)."""
    return insert_submissions(connection, [(submission, now)])[0]


def claim_due(
    connection: Connection, owner: str, limit: int, lease_seconds: float, now: float, gate: QuotaGate | None = None
) -> list[DueRecipient]:
    """Lease up to `limit` due recipients to `owner`; concurrent claimers never get the same row.

    With a quota gate, hostings out of room are not claimed, and first attempts beyond a
    hosting's room go back to the queue until room returns (they wait; nothing is refused).
    """
    conditions = [recipients.c.status.in_(_CLAIMABLE), recipients.c.next_attempt_at <= now]
    excluded = gate.excluded(now) if gate is not None else set()
    if excluded:
        conditions.append(recipients.c.hosting_id.not_in(excluded))
    due = select(recipients.c.id).where(*conditions).order_by(recipients.c.next_attempt_at).limit(limit)
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = connection.execute(
        update(recipients)
        .where(recipients.c.id.in_(due.scalar_subquery()))
        .values(
            status=RecipientStatus.SENDING.value,
            lease_owner=owner,
            lease_until=now + lease_seconds,
            next_attempt_at=now + lease_seconds,
            updated_at=now,
        )
        .returning(
            recipients.c.id,
            recipients.c.message_id,
            recipients.c.hosting_id,
            recipients.c.address,
            recipients.c.domain,
            recipients.c.attempts,
            recipients.c.queued_at,
        )
    ).all()
    if not rows:
        return []
    rows.sort(key=lambda row: row.id)
    rows = _suppress(connection, rows, now)
    if gate is not None and rows:
        rows = _within_quota(connection, gate, rows, now)
    firsts: dict[int, int] = defaultdict(int)
    for row in rows:
        if row.attempts == 0:
            firsts[row.hosting_id] += 1
    if not rows:
        return []
    activity.bump(connection, ((hosting_id, now, {"dispatched": count}) for hosting_id, count in firsts.items()))
    senders, released = {}, set()
    for message in connection.execute(
        select(messages.c.id, messages.c.envelope_from, messages.c.released_at).where(
            messages.c.id.in_({row.message_id for row in rows})
        )
    ):
        senders[message.id] = message.envelope_from
        if message.released_at is not None:
            released.add(message.id)
    return [
        DueRecipient(
            id=row.id,
            message_id=row.message_id,
            hosting_id=row.hosting_id,
            address=row.address,
            domain=row.domain,
            envelope_from=senders[row.message_id],
            attempts=row.attempts,
            first_queued_at=row.queued_at,
            released=row.message_id in released,
        )
        for row in rows
    ]


def _suppress(connection: Connection, rows: list, now: float) -> list:
    """Claimed recipients whose address is on a suppression list become `suppressed` (final, never
    attempted); the rest are returned. One query for the batch; more statements only on a match."""
    entries = suppressions.entries_for(connection, {(row.hosting_id, row.address) for row in rows}, now)
    if not entries:
        return rows
    hits = {row.id: (row, entry) for row in rows if (entry := match(row.address, row.hosting_id, entries)) is not None}
    if not hits:
        return rows
    connection.execute(
        update(recipients)
        .where(recipients.c.id == bindparam("rid"), recipients.c.status == RecipientStatus.SENDING.value)
        .values(
            status=RecipientStatus.SUPPRESSED.value,
            last_code=bindparam("code"),
            last_text=bindparam("text"),
            # The end of the window in which removing the entry sends the mail after all: the
            # body is kept until then.
            next_attempt_at=now + REQUEUE_WINDOW,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
        [{"rid": rid, "code": entry.code, "text": describe(entry)} for rid, (_, entry) in sorted(hits.items())],
    )
    activity.bump(connection, ((row.hosting_id, now, {"suppressed": 1}) for row, _ in hits.values()))
    # A suppressed address's sender hears of it once: for the first mail an entry stops.
    first = [(row, entry) for row, entry in hits.values() if not entry.notified]
    if first:
        connection.execute(
            insert(notice_events),
            [
                {"recipient_id": row.id, "message_id": row.message_id, "action": "failed", "created_at": now}
                for row, _ in first
            ],
        )
        suppressions.mark_notified(connection, {entry for _, entry in first})
    return [row for row in rows if row.id not in hits]


_QUOTA_LOCK = 0x5C71  # advisory-lock namespace: one claimer at a time counts a hosting's quota


def _within_quota(connection: Connection, gate: QuotaGate, rows: list, now: float) -> list:
    """Keep the first attempts each hosting has room for; put the rest back to wait for room."""
    firsts: dict[int, list] = defaultdict(list)
    for row in rows:
        if row.attempts == 0:
            firsts[row.hosting_id].append(row)
    if not firsts:
        return rows
    plan_names = dict(connection.execute(select(hostings.c.id, hostings.c.plan).where(hostings.c.id.in_(list(firsts)))).all())
    limited = {
        hosting_id: plan
        for hosting_id in firsts
        if (plan := gate.plan(plan_names.get(hosting_id, ""))).hourly or plan.max_per_day
    }
    if not limited:
        return rows
    if connection.dialect.name == "postgresql":
        for hosting_id in sorted(limited):  # one order for every claimer: no deadlock
            connection.execute(select(func.pg_advisory_xact_lock(_QUOTA_LOCK, hosting_id)))
    since = min(quota.earliest_minute(plan, now, gate.zone) for plan in limited.values())
    counts = activity.dispatched_since(connection, limited, since)
    put_back: set[int] = set()
    for hosting_id, plan in limited.items():
        used = counts.get(hosting_id, [])
        room = quota.room(plan, used, now, gate.zone)
        mine = firsts[hosting_id]
        if room.count is None or len(mine) < room.count:
            continue
        kept, over = mine[: room.count], mine[room.count :]
        after = quota.room(plan, [*used, (activity.minute_of(now), len(kept))], now, gate.zone)
        until = after.until or now + 60
        gate.exhaust(hosting_id, until)
        webhooks.hosting_event(
            connection, hosting_id, EventType.QUOTA_REACHED,
            {"reason": after.reason, "until": iso(until), "waiting": len(over)}, now,
        )  # fmt: skip
        gate.waits.append((hosting_id, len(over), until, after.reason))
        if over:
            put_back.update(row.id for row in over)
            connection.execute(
                update(recipients)
                .where(recipients.c.id.in_([row.id for row in over]))
                .values(
                    status=RecipientStatus.QUEUED.value,
                    lease_owner=None,
                    lease_until=None,
                    next_attempt_at=until,
                    last_text=quota.describe_wait(after.reason, until),
                )
            )
    return [row for row in rows if row.id not in put_back]


def load_bodies(connection: Connection, message_ids: Iterable[int]) -> dict[int, bytes]:
    ids = list(set(message_ids))
    if not ids:
        return {}
    return dict(connection.execute(select(bodies.c.message_id, bodies.c.data).where(bodies.c.message_id.in_(ids))).all())


def record_results(
    connection: Connection, owner: str, results: Sequence[AttemptResult], now: float, suppression_days: int = 30
) -> int:
    """Write each attempt and the recipient's new status; free bodies nobody needs any more.

    In the same transaction: addresses that bounced for good go on their hosting's suppression
    list, and failed, expired and long-delayed recipients get a notice event for their sender.
    A row whose lease another worker took over meanwhile is left alone (its attempt is still logged).
    Returns how many recipients were updated.
    """
    if not results:
        return 0
    updated = connection.execute(
        update(recipients)
        .where(
            recipients.c.id == bindparam("rid"),
            recipients.c.lease_owner == owner,
            recipients.c.status == RecipientStatus.SENDING.value,
        )
        .values(
            status=bindparam("new_status"),
            attempts=recipients.c.attempts + 1,
            last_code=bindparam("code"),
            last_text=bindparam("text"),
            next_attempt_at=bindparam("next_at"),
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
        [
            {
                "rid": result.recipient_id,
                "new_status": result.status.value,
                "code": result.code,
                "text": result.text[:2000],
                "next_at": result.next_attempt_at if result.next_attempt_at is not None else now,
            }
            for result in sorted(results, key=lambda result: result.recipient_id)  # one lock order for all writers
        ],
    ).rowcount
    pipeline.later(
        connection,
        _INSERT_ATTEMPT,
        [
            {
                "recipient_id": result.recipient_id,
                "at": result.started_at,
                "node": owner,
                "mx_host": result.mx_host[:300],
                "code": result.code,
                "text": result.text[:2000],
                "duration": result.duration,
            }
            for result in results
        ],
    )
    _notice_events(connection, results, now)
    suppressions.learn(connection, results, now, suppression_days)
    free_bodies(connection, [result.recipient_id for result in results], now)
    activity.bump(connection, (_outcome_counts(result, now) for result in results if result.hosting_id))
    activity.count_script_bounces(
        connection, [result.recipient_id for result in results if result.status is RecipientStatus.BOUNCED and result.hosting_id]
    )
    # Webhook events of final failures: nothing at all unless an endpoint subscribes (cached).
    webhooks.recipient_events(
        connection,
        (
            (result.recipient_id, result.hosting_id, _EVENT_OF[result.status], result.code, result.text)
            for result in results
            if result.status in _EVENT_OF and result.hosting_id
        ),
        now,
    )
    return updated


_EVENT_OF = {RecipientStatus.BOUNCED: EventType.BOUNCED, RecipientStatus.EXPIRED: EventType.EXPIRED}


_FAILED = (RecipientStatus.BOUNCED.value, RecipientStatus.EXPIRED.value)


def _notice_events(connection: Connection, results: Sequence[AttemptResult], now: float) -> None:
    """One event per recipient that failed or expired (and one per recipient first delayed past
    `delay_warning`): INSERT ... SELECT, so only for rows this writer really changed."""
    failed = [r.recipient_id for r in results if r.status in (RecipientStatus.BOUNCED, RecipientStatus.EXPIRED) and r.hosting_id]
    # Whether the hosting is blocked as spam or bounce is recorded now, when the mail failed: the
    # notice is written later, when the state may have changed either way.
    quiet = case((hostings.c.state.in_([state.value for state in QUIET_STATES]), 1), else_=0)
    with_hosting = recipients.join(hostings, hostings.c.id == recipients.c.hosting_id)
    if failed:
        connection.execute(
            insert(notice_events).from_select(
                ["recipient_id", "message_id", "action", "created_at", "quiet"],
                select(recipients.c.id, recipients.c.message_id, literal("failed"), literal(now), quiet)
                .select_from(with_hosting)
                .where(recipients.c.id.in_(failed), recipients.c.status.in_(_FAILED), recipients.c.updated_at == now),
            )
        )
    delayed = [r.recipient_id for r in results if r.warn_delay and r.status is RecipientStatus.DEFERRED and r.hosting_id]
    if delayed:
        warned = exists().where(notice_events.c.recipient_id == recipients.c.id, notice_events.c.action == "delayed")
        connection.execute(
            insert(notice_events).from_select(
                ["recipient_id", "message_id", "action", "created_at", "quiet"],
                select(recipients.c.id, recipients.c.message_id, literal("delayed"), literal(now), quiet)
                .select_from(with_hosting)
                .where(recipients.c.id.in_(delayed), recipients.c.status == RecipientStatus.DEFERRED.value, ~warned),
            )
        )


def _outcome_counts(result: AttemptResult, now: float) -> tuple[int, float, dict[str, int]]:
    if result.status is RecipientStatus.SENT:
        return result.hosting_id, now, {"sent": 1}
    if result.status is RecipientStatus.BOUNCED:
        return result.hosting_id, now, {"bounced": 1, "unknown_user": int(is_unknown_user(result.code, result.text))}
    if result.status is RecipientStatus.EXPIRED:
        return result.hosting_id, now, {"expired": 1}
    return result.hosting_id, now, {}


def free_bodies(connection: Connection, recipient_ids: Sequence[int], now: float | None = None) -> None:
    """Delete the bodies of these recipients' messages once every recipient of a message is final
    (a suppressed one until its re-queue window ends) and no notice to its sender waits for it."""
    message_ids = select(recipients.c.message_id).where(recipients.c.id.in_(list(recipient_ids)))
    connection.execute(delete(bodies).where(bodies.c.message_id.in_(message_ids.scalar_subquery()), ~_still_needed(now)))


def free_message_bodies(connection: Connection, message_ids: set[int], now: float | None = None) -> None:
    """free_bodies, given the messages rather than their recipients."""
    connection.execute(delete(bodies).where(bodies.c.message_id.in_(list(message_ids)), ~_still_needed(now)))


def free_suppressed_bodies(connection: Connection, now: float) -> None:
    """Bodies kept for suppressed recipients whose re-queue window ended in the last two days."""
    ended = select(recipients.c.message_id).where(
        recipients.c.status == RecipientStatus.SUPPRESSED.value,
        recipients.c.next_attempt_at <= now,
        recipients.c.next_attempt_at > now - 2 * 86400,
    )
    connection.execute(delete(bodies).where(bodies.c.message_id.in_(ended.scalar_subquery()), ~_still_needed(now)))


def _still_needed(now: float | None = None):
    suppressed = recipients.c.status == RecipientStatus.SUPPRESSED.value
    if now is not None:
        suppressed = and_(suppressed, recipients.c.next_attempt_at > now)
    needed_by_recipient = exists().where(
        and_(recipients.c.message_id == bodies.c.message_id, or_(recipients.c.status.not_in(_FINAL), suppressed))
    )
    notice_waits = exists().where(and_(notice_events.c.message_id == bodies.c.message_id, notice_events.c.done_at.is_(None)))
    return or_(needed_by_recipient, notice_waits)


def record_results_bulk(connection: Connection, items: list[tuple]) -> list[int]:
    """record_results for several callers of one writer batch, in one set of statements. Items are
    (owner, results, now) or (owner, results, now, suppression_days)."""
    by_owner: dict[str, list[AttemptResult]] = {}
    days = 30
    for item in items:
        by_owner.setdefault(item[0], []).extend(item[1])
        if len(item) > 3:
            days = item[3]
    now = max(item[2] for item in items)
    for owner, results in by_owner.items():
        record_results(connection, owner, results, now, days)
    return [len(item[1]) for item in items]


def withhold(connection: Connection, owner: str, recipient_ids: Sequence[int], now: float) -> int:
    """Claimed recipients not sent because their hosting looked blocked: held if it still is, else
    (it was unblocked meanwhile) back in the queue at once. Returns how many were held. The claim
    counted first attempts as dispatched: taken back, so that a message held and then released
    counts once, at the claim that sends it."""
    sending = [state.value for state in HostingState if not holds_mail(state)]
    mine = and_(
        recipients.c.id.in_(list(recipient_ids)),
        recipients.c.lease_owner == owner,
        recipients.c.status == RecipientStatus.SENDING.value,
    )
    held_in = connection.execute(
        update(recipients)
        .where(mine, recipients.c.hosting_id.in_(select(hostings.c.id).where(hostings.c.state.not_in(sending))))
        .values(status=RecipientStatus.HELD.value, held_at=now, lease_owner=None, lease_until=None, updated_at=now)
        .returning(recipients.c.hosting_id, recipients.c.attempts)
    ).all()
    requeued = connection.execute(
        update(recipients)
        .where(mine)
        .values(status=RecipientStatus.QUEUED.value, next_attempt_at=now, lease_owner=None, lease_until=None, updated_at=now)
        .returning(recipients.c.hosting_id, recipients.c.attempts)
    ).all()
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {"held": 0, "dispatched": 0})
    for row in held_in:
        counts[row.hosting_id]["held"] += 1
    for row in [*held_in, *requeued]:
        if row.attempts == 0:
            counts[row.hosting_id]["dispatched"] -= 1
    activity.bump(connection, ((hosting_id, now, values) for hosting_id, values in counts.items()))
    return len(held_in)


def postpone(connection: Connection, owner: str, recipient_ids: Sequence[int], until: float, now: float) -> int:
    """Claimed recipients that traffic shaping kept back: due again at `until`, no attempt counted
    (the remote site never saw them). The claim counted first attempts as dispatched: taken back,
    or the next claim would count them twice against the hosting's quota."""
    rows = connection.execute(
        update(recipients)
        .where(
            recipients.c.id.in_(list(recipient_ids)),
            recipients.c.lease_owner == owner,
            recipients.c.status == RecipientStatus.SENDING.value,
        )
        .values(
            status=case((recipients.c.attempts == 0, RecipientStatus.QUEUED.value), else_=RecipientStatus.DEFERRED.value),
            next_attempt_at=until,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
        .returning(recipients.c.hosting_id, recipients.c.attempts)
    ).all()
    firsts: dict[int, int] = defaultdict(int)
    for row in rows:
        if row.attempts == 0:
            firsts[row.hosting_id] -= 1
    activity.bump(connection, ((hosting_id, now, {"dispatched": count}) for hosting_id, count in firsts.items()))
    return len(rows)


def renew_leases(connection: Connection, owner: str, lease_seconds: float, now: float) -> int:
    """Extend every lease `owner` holds: a recipient waiting behind a slow destination stays ours."""
    until = now + lease_seconds
    return connection.execute(
        update(recipients)
        .where(recipients.c.status == RecipientStatus.SENDING.value, recipients.c.lease_owner == owner)
        .values(lease_until=until, next_attempt_at=until)
    ).rowcount


def release_leases(connection: Connection, owner: str, now: float) -> int:
    """At start, hand back what this node's previous run had claimed (Postfix re-queues its active queue)."""
    return connection.execute(
        update(recipients)
        .where(recipients.c.status == RecipientStatus.SENDING.value, recipients.c.lease_owner == owner)
        .values(
            status=RecipientStatus.DEFERRED.value,
            next_attempt_at=now,
            lease_owner=None,
            lease_until=None,
            last_text="delivery interrupted by a restart; retrying",
            updated_at=now,
        )
    ).rowcount


def retry_now(connection: Connection, hosting_id: int, now: float, domain: str = "") -> int:
    """`sendmail -q`: the hosting's deferred recipients (at `domain`, if given) become due at once.

    Only the due time moves; attempts, backoff and lifetime stay as they were, like Postfix's flush.
    """
    condition = (recipients.c.hosting_id == hosting_id) & (recipients.c.status == RecipientStatus.DEFERRED.value)
    if domain:
        # The socket server checked the domain (letters, digits, dots, dashes): nothing to escape.
        condition &= func.lower(recipients.c.address).like(f"%@{domain.lower()}")
    return connection.execute(update(recipients).where(condition).values(next_attempt_at=now)).rowcount
