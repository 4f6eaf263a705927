"""Per-hosting, per-minute counters: one upsert per hosting per commit, read by the hourly quota,
the policy engine and the volume charts in a few small rows instead of a scan of the log."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert

from scriptmail.config import PlanSettings
from scriptmail.control.content import HIGH_SCORE
from scriptmail.control.policy import Signals, needs_baseline
from scriptmail.control.quota import Room, earliest_minute, room
from scriptmail.control.states import SENDING_STATES
from scriptmail.store import pipeline
from scriptmail.store.schema import (
    COUNTER_NAMES,
    activity,
    activity_daily,
    hosting_events,
    hosting_totals,
    messages,
    recipients,
    script_counts,
)

COUNTERS = COUNTER_NAMES
TOTALS = ("sent", "bounced", "expired", "purged", "complaints", "suppressed")

# The platform's time zone decides which day a count belongs to (config key `timezone`); set
# once at start by the process (Gateway, CLI).
_zone: list[ZoneInfo] = [ZoneInfo("UTC")]


def set_zone(zone: ZoneInfo) -> None:
    _zone[0] = zone


def day_of(at: float) -> int:
    """The local day (date ordinal) of a time, in the platform's time zone."""
    return datetime.fromtimestamp(at, _zone[0]).date().toordinal()


def minute_of(now: float) -> int:
    return int(now // 60)


STRIPES = 16  # rows per counter key at most, on PostgreSQL (schema._stripe, store.writer)


def stripe_of(connection: Connection) -> int:
    """The stripe this transaction adds to: the store writer sets one per transaction (see
    store.writer); any other connection adds to stripe 0."""
    return connection.info.get("stripe", 0)


def folded(table: Table, *keys: str) -> Select:
    """One row per key with the stripes added up (the latest `last_at`), labelled as the table's
    columns: what a reader selects instead of the table itself."""
    values = [
        (func.max if column.name == "last_at" else func.sum)(column).label(column.name)
        for column in table.columns
        if column.name not in (*keys, "stripe") and not column.foreign_keys
    ]
    return select(*(table.c[key] for key in keys), *values).group_by(*(table.c[key] for key in keys))


def bump(connection: Connection, increments: Iterable[tuple[int, float, Mapping[str, int]]]) -> None:
    """Add counts: each item is (hosting id, time, {counter: n}). They land per minute (activity),
    per day (activity_daily) and since creation (hosting_totals, for the counters it keeps)."""
    minutes: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    days: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    totals: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOTALS, 0))
    for hosting_id, at, counts in increments:
        minute, day, total = minutes[(hosting_id, minute_of(at))], days[(hosting_id, day_of(at))], totals[hosting_id]
        for name, count in counts.items():
            if name in minute:
                minute[name] += count
                day[name] += count
            if name in total:
                total[name] += count
    _add_counts(connection, activity, ("hosting_id", "minute"), COUNTERS, minutes)
    _add_counts(connection, activity_daily, ("hosting_id", "day"), COUNTERS, days)
    _add_counts(connection, hosting_totals, ("hosting_id",), TOTALS, {(h,): counts for h, counts in totals.items()})


def adjust_totals(connection: Connection, hosting_id: int, counts: Mapping[str, int]) -> None:
    """Move counts between totals only (a sent recipient that bounces later: sent -1, bounced +1)."""
    _add_counts(connection, hosting_totals, ("hosting_id",), TOTALS, {(hosting_id,): {**dict.fromkeys(TOTALS, 0), **counts}})


def _add_counts(
    connection: Connection, table: Table, keys: tuple[str, ...], columns: tuple[str, ...], rows: Mapping[tuple, Mapping[str, int]]
) -> None:
    stripe = stripe_of(connection)
    values = [
        {**dict(zip(keys, key)), "stripe": stripe, **counts}
        for key, counts in sorted(rows.items())  # one lock order for every writer
        if any(counts.values())
    ]
    pipeline.later(connection, counter_upsert(connection.dialect.name, table, keys, columns), values)


@functools.cache
def counter_upsert(dialect: str, table: Table, keys: tuple[str, ...], added: tuple[str, ...], latest: tuple[str, ...] = ()) -> Insert:
    """An upsert into one stripe of a counter table: `added` columns are summed, `latest` ones keep
    the larger value. Built once per process: constructing one (its `excluded` alias proxies every
    column) cost more CPU than running it, on every commit of the hot path."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    larger = func.greatest if dialect == "postgresql" else func.max
    return statement.on_conflict_do_update(
        index_elements=[*(table.c[key] for key in keys), table.c.stripe],
        set_={
            **{name: table.c[name] + statement.excluded[name] for name in added},
            **{name: larger(table.c[name], statement.excluded[name]) for name in latest},
        },
    )


def count_scripts(connection: Connection, items: Iterable[tuple[int, str, int, float]]) -> None:
    """Messages and recipients per originating script: items are (hosting id, script, recipients, time)."""
    rows: dict[tuple[int, str], list] = {}
    for hosting_id, script, count, at in items:
        row = rows.setdefault((hosting_id, script[:500]), [0, 0, 0.0])
        row[0] += 1
        row[1] += count
        row[2] = max(row[2], at)
    if not rows:
        return
    stripe = stripe_of(connection)
    pipeline.later(
        connection,
        _script_upsert(connection.dialect.name),
        [
            {"hosting_id": h, "script": script, "stripe": stripe, "messages": m, "recipients": r, "last_at": at, "bounced": 0}
            for (h, script), (m, r, at) in sorted(rows.items())
        ],
    )


def _script_upsert(dialect: str) -> Insert:
    return counter_upsert(dialect, script_counts, ("hosting_id", "script"), ("messages", "recipients", "bounced"), ("last_at",))


def script_key(script: str, cwd: str) -> str:
    """The script_counts row a message counts in: its originating script, else the caller's directory."""
    return (script or cwd)[:500]


def count_script_bounces(connection: Connection, recipient_ids: Iterable[int]) -> None:
    """Recipients that have just bounced, counted against the script of their message, in the
    caller's transaction: one read of their messages, then one upsert into this writer's stripe."""
    ids = sorted(set(recipient_ids))
    counts: dict[tuple[int, str], int] = defaultdict(int)
    for start in range(0, len(ids), 500):
        rows = connection.execute(
            select(recipients.c.hosting_id, messages.c.script, messages.c.cwd)
            .join(messages, messages.c.id == recipients.c.message_id)
            .where(recipients.c.id.in_(ids[start : start + 500]))
        )
        for hosting_id, script, cwd in rows:
            counts[(hosting_id, script_key(script, cwd))] += 1
    if not counts:
        return
    stripe = stripe_of(connection)
    pipeline.later(
        connection,
        _script_upsert(connection.dialect.name),
        [
            {"hosting_id": h, "script": script, "stripe": stripe, "messages": 0, "recipients": 0, "last_at": 0.0, "bounced": n}
            for (h, script), n in sorted(counts.items())  # one lock order for every writer
        ],
    )


def dispatched_since(connection: Connection, hosting_ids: Iterable[int], since_minute: int) -> dict[int, list[tuple[int, int]]]:
    """(minute, recipients first sent) per hosting since a minute, oldest first: what the quota counts."""
    result: dict[int, list[tuple[int, int]]] = defaultdict(list)
    dispatched = func.sum(activity.c.dispatched)
    rows = connection.execute(
        select(activity.c.hosting_id, activity.c.minute, dispatched)
        .where(activity.c.hosting_id.in_(list(hosting_ids)), activity.c.minute >= since_minute, activity.c.dispatched > 0)
        .group_by(activity.c.hosting_id, activity.c.minute)
        .order_by(activity.c.hosting_id, activity.c.minute)
    )
    for hosting_id, minute, count in rows:
        result[hosting_id].append((minute, int(count)))
    return result


def quota_room(connection: Connection, hosting_id: int, plan: PlanSettings, now: float, zone: ZoneInfo) -> Room:
    """How much the hosting may still send now under its plan (the same count the claim makes)."""
    since = earliest_minute(plan, now, zone)
    return room(plan, dispatched_since(connection, [hosting_id], since).get(hosting_id, []), now, zone)


def totals_since(connection: Connection, hosting_id: int, since_minute: int) -> dict[str, int]:
    """Every counter of one hosting summed since a minute."""
    row = connection.execute(
        select(*(func.coalesce(func.sum(activity.c[name]), 0).label(name) for name in COUNTERS)).where(
            activity.c.hosting_id == hosting_id, activity.c.minute >= since_minute
        )
    ).one()
    return dict(row._mapping)


def hourly_accepted(connection: Connection, hosting_id: int, since_minute: int, until_minute: int) -> dict[int, int]:
    """Messages accepted per hour (hour number = minute // 60) in [since, until): the volume baseline."""
    hour = activity.c.minute // 60
    rows = connection.execute(
        select(hour.label("hour"), func.sum(activity.c.accepted))
        .where(activity.c.hosting_id == hosting_id, activity.c.minute >= since_minute, activity.c.minute < until_minute)
        .group_by("hour")
    )
    return {int(hour): int(count) for hour, count in rows}


def busy_hostings(connection: Connection, since_minute: int) -> list[int]:
    """Hostings with any activity since a minute: the only ones the policy sweep looks at."""
    return list(connection.execute(select(activity.c.hosting_id).where(activity.c.minute >= since_minute).distinct()).scalars())


def prune(connection: Connection, before_minute: int) -> int:
    """Delete counters older than a minute, at most an hour of them per call (small transactions)."""
    oldest = connection.execute(select(func.min(activity.c.minute))).scalar()
    if oldest is None or oldest >= before_minute:
        return 0
    return connection.execute(delete(activity).where(activity.c.minute < min(before_minute, oldest + 60))).rowcount


def signals(connection: Connection, hosting_id: int, plan: PlanSettings, now: float, released_at: float | None = None) -> Signals:
    """Everything the policy engine needs about one hosting, in a few small queries.

    Only what happened since the hosting last started sending again (`released_at`: an unblock,
    the end of a purge) counts: the traffic that caused a block must not block it again at once.
    Messages are counted exactly from the log's (hosting, time) index; outcomes, which arrive
    later, from the per-minute counters after the release minute.
    """
    minute = minute_of(now)
    since = max(now - 3600, released_at or 0.0)
    accepted, flagged = connection.execute(
        select(func.count(), func.coalesce(func.sum(case((messages.c.score >= HIGH_SCORE, 1), else_=0)), 0)).where(
            messages.c.hosting_id == hosting_id, messages.c.received_at >= since
        )
    ).one()
    first_minute = minute_of(released_at) + 1 if released_at else 0
    recent = totals_since(connection, hosting_id, max(minute - plan.unknown_user_window // 60 + 1, first_minute))
    complaints = totals_since(connection, hosting_id, max(minute - plan.complaint_window // 60 + 1, first_minute))["complaints"]
    partial = Signals(accepted_hour=accepted, flagged_hour=flagged)
    baseline = None
    if needs_baseline(plan, partial):
        this_hour = minute // 60
        counts = hourly_accepted(connection, hosting_id, (this_hour - 168) * 60, this_hour * 60)
        baseline = [counts.get(h, 0) for h in range(this_hour - 168, this_hour)]
    outcomes = connection.execute(
        select(func.sum(activity.c.sent).label("sent"), func.sum(activity.c.bounced).label("bounced"))
        .where(
            activity.c.hosting_id == hosting_id,
            activity.c.minute >= max(minute - 7 * 24 * 60, first_minute),
            (activity.c.sent + activity.c.bounced) > 0,
        )
        .group_by(activity.c.minute)
        .order_by(activity.c.minute.desc())
        .limit(plan.bounce_window)  # every minute holds at least one outcome
    ).all()
    return Signals(
        accepted_hour=accepted,
        flagged_hour=flagged,
        hourly_baseline=baseline,
        outcomes=[(int(row.sent), int(row.bounced)) for row in outcomes],
        unknown_recent=recent["unknown_user"],
        complaints_recent=complaints,
    )


def last_releases(connection: Connection, hosting_ids: Iterable[int]) -> dict[int, float]:
    """When each hosting last entered a sending state (unblock, end of a purge, operator)."""
    sending = [state.value for state in SENDING_STATES]
    rows = connection.execute(
        select(hosting_events.c.hosting_id, func.max(hosting_events.c.at))
        .where(
            hosting_events.c.hosting_id.in_(list(hosting_ids)),
            hosting_events.c.to_state.in_(sending),
            # A plan change is no release (hosting_control.PLAN_CHANGE), nor is one message's (store.one_message).
            hosting_events.c.action.not_in(["plan", "release-one", "delete-one", "send-again"]),
        )
        .group_by(hosting_events.c.hosting_id)
    )
    return dict(rows.all())
