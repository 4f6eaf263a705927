"""Notices to senders, from the events delivery wrote with each outcome to the queued notices:
one DSN per message and kind (failed, delayed), sent as the platform's own mail with the null
envelope sender. Run by the scheduler in one transaction per batch, so a crash loses none and
sends none twice."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, select, update

from scriptmail.config import DomainsSettings
from scriptmail.dsn.compose import HEADER_BYTES, RecipientReport, notice
from scriptmail.dsn.decide import Outcome, was_quiet, why_not
from scriptmail.model import HostingState, Origin, Submission
from scriptmail.store.hostings import SYSTEM_HOSTING, system_hosting_id
from scriptmail.store.queue import free_message_bodies, insert_submissions
from scriptmail.store.schema import attempts, bodies, hostings, messages, notice_events, recipients
from scriptmail.store.system_mail import signed

BATCH = 500  # events per transaction
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class NoticeSettings:
    hostname: str  # the Reporting-MTA
    from_address: str  # the notices' From (control.notify_from)
    per_hour: int  # control.dsn_per_sender_hour
    lifetime: float  # delivery.lifetime: until when a delayed message is retried
    domains: DomainsSettings | None = None  # signs the notices with the platform's domain (store.system_mail)


def write_pending(connection: Connection, settings: NoticeSettings, now: float, limit: int = BATCH) -> int:
    """Turn up to `limit` waiting events into notices (or into the reason none goes); returns how
    many events were handled."""
    pending = select(
        notice_events.c.id, notice_events.c.recipient_id, notice_events.c.message_id, notice_events.c.action, notice_events.c.quiet
    ).where(
        notice_events.c.done_at.is_(None)
    ).order_by(notice_events.c.id).limit(limit)
    if connection.dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)  # two schedulers never write the same notice
    events = connection.execute(pending).all()
    if not events:
        return 0
    recipient_ids = [event.recipient_id for event in events]
    message_ids = {event.message_id for event in events}
    about = {
        row.id: row
        for row in connection.execute(
            select(recipients.c.id, recipients.c.address, recipients.c.last_code, recipients.c.last_text, recipients.c.updated_at,
                   recipients.c.queued_at)
            .where(recipients.c.id.in_(recipient_ids))
        )
    }  # fmt: skip
    mail = {
        row.id: row
        for row in connection.execute(
            select(messages.c.id, messages.c.envelope_from, messages.c.received_at, messages.c.subject,
                   hostings.c.name, hostings.c.state, hostings.c.notices, hostings.c.language)
            .select_from(messages.join(hostings, hostings.c.id == messages.c.hosting_id))
            .where(messages.c.id.in_(message_ids))
        )
    }  # fmt: skip
    servers = dict(
        connection.execute(
            select(attempts.c.recipient_id, attempts.c.mx_host).where(attempts.c.recipient_id.in_(recipient_ids)).order_by(attempts.c.id)
        ).all()
    )  # the last attempt's server of each recipient
    heads = dict(
        connection.execute(
            select(bodies.c.message_id, func.substr(bodies.c.data, 1, HEADER_BYTES + 4)).where(bodies.c.message_id.in_(message_ids))
        ).all()
    )
    senders = {row.envelope_from.lower() for row in mail.values() if row.envelope_from}
    sent_recently: dict[str, int] = defaultdict(int)
    if senders:
        for sender, count in connection.execute(
            select(notice_events.c.sender, func.count(notice_events.c.notice_id.distinct()))
            .where(notice_events.c.sender.in_(senders), notice_events.c.done_at > now - HOUR, notice_events.c.outcome == Outcome.SENT.value)
            .group_by(notice_events.c.sender)
        ):
            sent_recently[sender] = count

    groups: dict[tuple[int, str], list] = defaultdict(list)
    for event in events:
        groups[(event.message_id, event.action)].append(event)
    decided: dict[int, tuple[str, str]] = {}  # event id -> (outcome, sender)
    written: list[tuple[list[int], Submission]] = []
    for (message_id, action), members in sorted(groups.items()):
        message = mail.get(message_id)
        sender = (message.envelope_from if message else "").lower()
        all_quiet = False
        if message is not None:
            # Recipients that failed while the hosting was blocked as spam get none; the others may.
            state = HostingState(message.state)
            quiet = [event for event in members if was_quiet(event.quiet, state)]
            all_quiet = len(quiet) == len(members)
            if quiet and not all_quiet:
                decided.update({event.id: (Outcome.SPAM_BLOCK.value, sender) for event in quiet})
                members = [event for event in members if event not in quiet]
        reason = (
            Outcome.NULL_SENDER
            if message is None
            else why_not(sender, all_quiet, bool(message.notices), message.name == SYSTEM_HOSTING,
                         sent_recently[sender], settings.per_hour)
        )  # fmt: skip
        if reason is not None:
            decided.update({event.id: (reason.value, sender) for event in members})
            continue
        reports = [
            RecipientReport(row.address, row.last_code, row.last_text, servers.get(row.id, ""), row.updated_at)
            for event in members
            if (row := about.get(event.recipient_id)) is not None
        ]
        subject, data = notice(
            action=action, recipients=reports, sender=message.envelope_from, from_address=settings.from_address,
            reporting_mta=settings.hostname, arrival=message.received_at, subject=message.subject,
            original=bytes(heads.get(message_id) or b""), language=message.language, now=now,
            retry_until=message.received_at + settings.lifetime if action == "delayed" else None,
        )  # fmt: skip
        sent_recently[sender] += 1
        written.append(([event.id for event in members], _submission(connection, settings, message.envelope_from, subject, data)))
        decided.update({event.id: (Outcome.SENT.value, sender) for event in members})
    queue_ids: dict[int, int] = {}
    if written:
        ids = insert_submissions(connection, [(signed(connection, submission, settings.domains, now), now) for _, submission in written])
        for (event_ids, _), queue_id in zip(written, ids):
            queue_ids.update(dict.fromkeys(event_ids, queue_id))
    connection.execute(
        update(notice_events)
        .where(notice_events.c.id == bindparam("eid"), notice_events.c.done_at.is_(None))
        .values(done_at=now, outcome=bindparam("how"), sender=bindparam("to"), notice_id=bindparam("qid"))
        .execution_options(synchronize_session=False),
        [
            {"eid": event_id, "how": how, "to": sender[:320], "qid": queue_ids.get(event_id)}
            for event_id, (how, sender) in sorted(decided.items())
        ],
    )
    free_message_bodies(connection, message_ids, now)
    return len(events)



def _submission(connection: Connection, settings: NoticeSettings, to: str, subject: str, data: bytes) -> Submission:
    return Submission(
        hosting_id=system_hosting_id(connection, settings.from_address),
        envelope_from="",  # the null sender: nothing ever answers a notice (RFC 3464, RFC 5321 §4.5.5)
        recipients=(to,),
        data=data,
        origin=Origin.SENDMAIL,
        client="scriptmail",
        subject=subject,
        script="scriptmail delivery notice",
    )


def prune(connection: Connection, before: float) -> int:
    """Forget handled events older than `before` (the hourly cap only looks one hour back)."""
    return connection.execute(
        notice_events.delete().where(notice_events.c.done_at.is_not(None), notice_events.c.done_at < before)
    ).rowcount
